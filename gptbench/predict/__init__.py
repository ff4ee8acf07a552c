"""The prediction: how fast a GPU trains a configuration, from the nearest measurement first, and what fits in memory.

Torch-free, below cloud/ (the money) and bench/ (the measurement), so both can stand on it.

    workload.py     one training step as data (Workload), and the memory one rank needs for it (memory_breakdown)
    projection.py   the roofline-style step model for hardware you don't have
    calibration.py  published and measured points (calibration.csv) and the fit of the model's two efficiencies
    reference.py    the reference set: calibration.csv's rows and the shipped reports (reference/), with provenance
    order.py        the order every estimate follows: measured, else carried from this GPU's nearest point, else projected
    holdout.py      the order's bands: transfers between configurations on one GPU, and whole GPUs, held out
    validation.py   the leave-one-out and leave-one-source-out analysis of the roofline itself
    scaling.py      multi-GPU scaling from the link model, validated leave-one-out on published multi-GPU points
    fit.py          the fastest micro-batch x accumulation (then sharding, checkpointing) that fits the memory model
    ledger.py       the registered predictions (benchmarks/predictions.csv): each judged against its measurement
"""
