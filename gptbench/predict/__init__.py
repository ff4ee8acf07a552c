"""The prediction: how fast a GPU would train a configuration nobody here measured, and what fits in its memory.

Torch-free, below cloud/ (the money) and bench/ (the measurement), so both can stand on it.

    workload.py     one training step as data (Workload), and the memory one rank needs for it (memory_breakdown)
    projection.py   the roofline-style step model for hardware you don't have
    calibration.py  published and measured points (calibration.csv) and the fit of the model's two efficiencies
    validation.py   the held-out band: each point projected with its whole source left out of the fit
    scaling.py      multi-GPU scaling from the link model, validated leave-one-out on published multi-GPU points
    fit.py          the fastest micro-batch x accumulation (then sharding, checkpointing) that fits the memory model
    ledger.py       the registered predictions (benchmarks/predictions.csv): each judged against its measurement
"""
