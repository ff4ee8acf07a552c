"""The measurement: one training configuration, timed properly.

    config.py       RunOptions -> a frozen, validated BenchConfig (every default decided here, with its reason)
    step.py         the train step: autocast, gradient accumulation, clipping, AdamW, torch.compile, DDP
    harness.py      warm-up apart, timed steps each closed by a device synchronisation, medians
    flops.py        FLOPs per token (PaLM appendix B), MFU, and hardware FLOPs with recomputation (HFU)
    runner.py       one run end to end -> a report's Run, and the report written; worker.py runs it in a child process
    distributed.py  torchrun ranks, DDP, scaling efficiency
    ranks.py        a multi-process run: the launcher's side (baseline, then torchrun) and a rank's side
    sharding.py     ZeRO-1 (ZeroRedundancyOptimizer) and FSDP2 (fully_shard per block), GPT-2's AdamW
    fp8.py          --fp8: the blocks' linear layers to torchao's Float8Linear
    failure.py      oom or error, read from the whole exception chain
    memory.py, telemetry.py, contention.py   the side signals: peak memory, power and clocks, other work
"""
