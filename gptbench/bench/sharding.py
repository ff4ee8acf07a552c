"""Sharded training state on PyTorch's own engines: ZeRO-1 (`--shard optimizer`) with ZeroRedundancyOptimizer
under DDP, and FSDP2 (`--shard full`) with `fully_shard` on each transformer block and then on the root.

Why ZeroRedundancyOptimizer for `optimizer` rather than FSDP2 with reshard_after_forward=False: it is what the
memory model calls `optimizer` (only AdamW's moments split, gradients all-reduced whole as in DDP, llm.c's ZeRO-1),
so a measured run and `estimate`'s prediction describe the same thing; and on this repository's CPU measurement
(benchmarks/zero1_vs_fsdp_noreshard.py, figures in docs/sharding.md) it was the faster of the two per step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.distributed.optim import ZeroRedundancyOptimizer

from gptbench.bench.distributed import compile_kwargs
from gptbench.errors import GptbenchError
from gptbench.model.blocks import HOW_TO_MARK, find_blocks

ADAMW_FLAGS: dict[str, dict[str, Any]] = {
    "fused": {"fused": True},
    "foreach": {"foreach": True},
    "for-loop": {"foreach": False, "fused": False},
}
ADAMW_HYPER: dict[str, Any] = {"betas": (0.9, 0.95), "eps": 1e-8}  # GPT-2's (nanoGPT, llm.c)


def adamw_groups(model: nn.Module) -> list[dict[str, Any]]:
    """GPT-2-style groups: weight decay 0.1 on matrices only (not biases, norms)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]


def make_adamw(model: nn.Module, lr: float, impl: str) -> torch.optim.AdamW:
    """GPT-2-style AdamW: betas (0.9, 0.95), weight decay 0.1 on matrices only (not biases, norms)."""
    return torch.optim.AdamW(adamw_groups(model), lr=lr, **ADAMW_HYPER, **ADAMW_FLAGS[impl])


def make_zero_adamw(model: nn.Module, lr: float, impl: str) -> ZeroRedundancyOptimizer:
    """The same AdamW, each rank holding the moments of its share of the parameters (ZeRO stage 1); after each step
    the updated parameters are broadcast from the rank that owns them."""
    return ZeroRedundancyOptimizer(
        adamw_groups(model), optimizer_class=torch.optim.AdamW, lr=lr, **ADAMW_HYPER, **ADAMW_FLAGS[impl]
    )


def shard_fully(model: nn.Module, dtype: str, compile: bool, mode: str = "default") -> nn.Module:
    """`model` under FSDP2: each block its own unit (its weights gathered just before it runs and freed after), then
    the root (embeddings, final norm, head). With `compile`, each block's forward is compiled and FSDP2's hooks stay
    eager around it (torchtitan's per-block order).

    No MixedPrecisionPolicy, whatever `dtype`: weights are gathered and gradients reduced in fp32, and the trainer's
    autocast casts each matmul to bf16/fp16 as it does in one process, under DDP and under ZeRO-1, so every layout
    computes the same thing (embeddings, LayerNorms and the residual stream in fp32; tests/test_sharding.py holds the
    residual stream's dtype and the losses). FSDP2's usual `param_dtype=bf16` would halve the gathers' bytes and
    drop autocast's bf16 copies of the matmul weights (kept from forward to backward, unsharded: the memory model
    counts them), but it casts the embeddings and so the whole residual stream to bf16: another model's numerics
    measured as if it were the same one. A policy on the blocks alone (`cast_forward_inputs=False`) would keep the
    residual stream fp32, but hands LayerNorm bf16 weights with fp32 inputs, which the CPU kernel refuses."""
    from torch.distributed.fsdp import fully_shard

    del dtype  # the trainer's autocast applies it, as in every other layout
    blocks = find_blocks(model)
    if not blocks:
        raise GptbenchError(f"--shard full shards block by block, and this model has no blocks gptbench can find; {HOW_TO_MARK}")
    for block in blocks:
        if compile:
            block.forward = torch.compile(block.forward, **compile_kwargs(mode))
        fully_shard(block)
    fully_shard(model)
    return model
