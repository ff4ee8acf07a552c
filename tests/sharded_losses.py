"""Test support, not a test: as one rank of a torchrun job, train the tiny preset for a few steps under each
`--shard` (none = DDP, optimizer = ZeRO-1, full = FSDP2), every rank on the same batches, and print rank 0's losses
as one JSON line. With identical batches on every rank the averaged gradient equals one process's, so the losses
must match a single-process run of the same seed (tests/test_sharding.py compares them)."""

from __future__ import annotations

import json
import sys

import torch.distributed as dist

from gptbench.bench.config import RunOptions, resolve_config
from gptbench.bench.step import Trainer
from gptbench.data.sources import make_source

STEPS = 4


def losses(shard: str, checkpointing: bool) -> list[float]:
    """The per-step losses of the tiny preset under `shard` (seed 1337, synthetic data, the same on every rank)."""
    options = RunOptions(
        device="cpu", model="tiny", seq_len=32, micro_batch=2, grad_accum=2, dtype="fp32", allocator="system",
        shard=shard, activation_checkpointing=checkpointing,
    )  # fmt: skip
    config = resolve_config(options)
    source = make_source(config.data, config.micro_batch, config.seq_len, config.torch_device, config.seed)
    trainer = Trainer(config, source)
    return [trainer.step().item() for _ in range(STEPS)]


if __name__ == "__main__":
    dist.init_process_group("gloo")
    shards = sys.argv[1].split(",")
    found = {s: losses(s, checkpointing=s == "full") for s in shards}  # full also with checkpointing: FSDP2 + recompute
    if dist.get_rank() == 0:
        sys.stdout.write("LOSSES " + json.dumps(found) + "\n")
    dist.destroy_process_group()
