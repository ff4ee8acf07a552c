"""The measurement: one training configuration, timed properly.

    config.py       RunOptions -> a frozen, validated BenchConfig (every default decided here, with its reason)
    step.py         the train step: autocast, gradient accumulation, clipping, AdamW, torch.compile, DDP
    harness.py      warm-up apart, timed steps each closed by a device synchronisation, medians
    flops.py        FLOPs per token (PaLM appendix B) and MFU
    runner.py       one run end to end -> a report's Run; worker.py runs it in a child process
    distributed.py  torchrun ranks, DDP, scaling efficiency
    failure.py      oom or error, read from the whole exception chain
    memory.py, telemetry.py, contention.py   the side signals: peak memory, power and clocks, other work
"""
