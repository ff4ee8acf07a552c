"""Time and money for a whole run. Never imports torch: these answer in well under a second.

The prediction these stand on (the workload, the roofline, its fit and held-out band, multi-GPU scaling, what
fits in memory) lives one layer down, in gptbench.predict.

    estimate.py     hours and dollars from a throughput
    throughput.py   where the throughput comes from: a report, a measured GPU, or a projection; the catalog
    breakdown.py    --explain: where the step's time goes
    plan.py         `plan`: every place to run, each with its best configuration, ranked; answers.py its answers
    setup.py        set-up time billed: compile warm-up, data preparation, checkpoint writes
    prices.py       the price catalog (prices.csv, each row dated and sourced)
    tokens.py       10e9, 2.5B, fineweb-10b, chinchilla -> a token count
"""
