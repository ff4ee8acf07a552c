"""Test support, not a test: as one rank of a torchrun job, train the tiny preset for a few steps under each case
(`--shard` none = DDP, optimizer = ZeRO-1, full = FSDP2; fp32 or bf16; gradient sync on, or off on purpose), each
rank on batches of its own as `gptbench run` gives them (seed + rank), and print one JSON line: per step, the loss
averaged over the ranks and the gradient norm before clipping. One process trained on every rank's batches side by
side (`trajectory(case)` here) must reach the same numbers when the gradients are averaged over the ranks, and only
then: a missing all-reduce leaves each rank on its own gradients, a mis-scaled one changes the gradient norm (which
AdamW's update alone would hide: it divides the gradient's scale away). tests/test_sharding.py compares them.

A case is `dtype:shard` with `+ckpt` (activation checkpointing) or `+nosync` (every micro-batch inside DDP's
no_sync: the positive control, which must fail the comparison).
"""

from __future__ import annotations

import contextlib
import json
import sys

import torch
import torch.distributed as dist

from gptbench.bench.config import RunOptions, resolve_config
from gptbench.bench.step import Trainer
from gptbench.data.sources import Batch, SyntheticSource
from gptbench.model.blocks import find_blocks

STEPS = 4
RANKS = 2
MICRO_BATCH = 2  # per rank; one process trains on RANKS x this
SEQ = 32


class SideBySide:
    """Every rank's next batch concatenated: what one process sees when it trains on all ranks' data at once."""

    def __init__(self, sources: list[SyntheticSource]) -> None:
        self.sources = sources

    def next_batch(self) -> Batch:
        xs, ys = zip(*(s.next_batch() for s in self.sources), strict=True)
        return torch.cat(xs), torch.cat(ys)


def _source(rank: int, vocab: int) -> SyntheticSource:
    return SyntheticSource(MICRO_BATCH, SEQ, torch.device("cpu"), 1337 + rank, vocab=vocab)  # the runner's seed + rank


def _global(value: torch.Tensor) -> float:
    """A DTensor's global value (FSDP2's gradient norm), or the tensor's."""
    full = getattr(value, "full_tensor", None)
    return float(full() if full is not None else value)


def trajectory(case: str) -> dict[str, list]:
    """Per step: the loss (averaged over the ranks in a process group) and the gradient norm before clipping; and
    the dtype of the residual stream entering the second block."""
    dtype, _, rest = case.partition(":")
    shard, *flags = rest.split("+")
    group = dist.is_available() and dist.is_initialized()
    ranks = dist.get_world_size() if group else 1
    options = RunOptions(
        device="cpu", model="tiny", seq_len=SEQ, micro_batch=MICRO_BATCH * (1 if group else RANKS), grad_accum=2,
        dtype=dtype, allocator="system", shard=shard if group else "none", activation_checkpointing="ckpt" in flags,
    )  # fmt: skip
    config = resolve_config(options)
    vocab = config.model.vocab_size
    source = _source(dist.get_rank(), vocab) if group else SideBySide([_source(r, vocab) for r in range(RANKS)])
    trainer = Trainer(config, source)
    if "nosync" in flags:  # the positive control: every micro-batch's backward inside no_sync, so no all-reduce ever
        ddp = trainer.ddp
        assert ddp is not None, "nosync is a DDP case (shard none)"
        trainer._grad_sync = lambda last: ddp.no_sync()  # type: ignore[method-assign]
    residual: list[str] = []
    blocks = find_blocks(trainer.model.module if trainer.ddp is not None else trainer.model)
    blocks[1].register_forward_pre_hook(lambda _, args: residual.append(str(args[0].dtype)))
    norms: list[float] = []
    clip = torch.nn.utils.clip_grad_norm_

    def recording_clip(*args: object, **kwargs: object) -> torch.Tensor:
        norm = clip(*args, **kwargs)  # type: ignore[arg-type]
        norms.append(_global(norm))
        return norm

    losses = []
    with _patched(torch.nn.utils, "clip_grad_norm_", recording_clip):
        for _ in range(STEPS):
            loss = trainer.step().detach().float()
            if group:
                dist.all_reduce(loss)  # gloo has no average: the sum over ranks, then divided
            losses.append(float(loss) / ranks)
    return {"loss": losses, "grad_norm": norms, "residual_dtype": sorted(set(residual))}


@contextlib.contextmanager
def _patched(owner: object, name: str, value: object):  # type: ignore[no-untyped-def]
    old = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, old)


if __name__ == "__main__":
    dist.init_process_group("gloo")
    found = {case: trajectory(case) for case in sys.argv[1].split(",")}
    if dist.get_rank() == 0:
        sys.stdout.write("TRAJECTORIES " + json.dumps(found) + "\n")
    dist.barrier()
    dist.destroy_process_group()
