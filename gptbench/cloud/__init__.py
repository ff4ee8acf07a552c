"""Time and money for a whole run. Never imports torch: these answer in well under a second.

    estimate.py     hours and dollars from a throughput
    throughput.py   where the throughput comes from: a report, a measured GPU, or a projection; the catalog
    workload.py     one training step as data (Workload), and the memory one rank needs for it (memory_breakdown)
    projection.py   the roofline-style step model for hardware you don't have
    calibration.py, validation.py   its fit to published and measured points, and the held-out band
    breakdown.py    --explain: where the step's time goes
    plan.py         `plan`: every place to run, each with its best configuration, ranked; answers.py its answers
    fit.py          the fastest micro-batch x accumulation (then sharding, checkpointing) that fits the memory model
    scaling.py      multi-GPU scaling from the link model, validated leave-one-out on published multi-GPU points
    setup.py        set-up time billed: compile warm-up, data preparation, checkpoint writes
    prices.py       the price catalog (prices.csv, each row dated and sourced)
    tokens.py       10e9, 2.5B, fineweb-10b, chinchilla -> a token count
"""
