"""The fastest configuration that fits: micro-batch x gradient accumulation reaching the tokens per optimizer step,
checked against the memory model (projection.memory_breakdown); where nothing fits, sharded optimizer state, then
FSDP, then activation checkpointing, as the memory model allows. `cheapest_fit` names the first of those layouts that
makes one given workload fit (estimate's warning, ablate's ladder). Never imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

from gptbench.errors import GptbenchError
from gptbench.hardware.specs import GpuSpec
from gptbench.predict.scaling import modelled_efficiency, phases_for
from gptbench.predict.workload import MemoryBreakdown, Workload, memory_breakdown, memory_estimate_gb

# Memory layouts tried in order when the model does not fit: sharded AdamW state, then FSDP, then recomputation.
LAYOUTS = (("none", False), ("optimizer", False), ("full", False), ("none", True), ("optimizer", True), ("full", True))


def sequences_per_gpu(tokens_per_step: int, seq: int, gpus: int) -> int:
    """Sequences each GPU handles per optimizer step; an error unless tokens per step split evenly."""
    if tokens_per_step % seq:
        raise GptbenchError(f"--tokens-per-step {tokens_per_step:,} is not a whole number of {seq}-token sequences")
    sequences = tokens_per_step // seq
    if sequences % gpus:
        raise GptbenchError(
            f"--tokens-per-step {tokens_per_step:,} is {sequences} sequences of {seq}, which do not split over {gpus} GPUs"
        )
    return sequences // gpus


def _divisors_desc(n: int) -> list[int]:
    return [d for d in range(n, 0, -1) if n % d == 0]


@dataclass(frozen=True)
class Config:
    """A configuration that fits, with the modelled rate of one GPU and the node's scaling efficiency."""

    workload: Workload
    single_tokens_per_sec: float
    efficiency: float

    @property
    def node_tokens_per_sec(self) -> float:
        return self.single_tokens_per_sec * self.workload.world_size * self.efficiency


def _candidates(base: Workload, spec: GpuSpec, gpus: int, per_gpu: int) -> Iterator[list[Workload]]:
    """Per memory layout in LAYOUTS' order (sharding only on several GPUs), the micro-batches that fit."""
    capacity = spec.memory_gb or math.inf
    for sharding, checkpointing in LAYOUTS:
        if sharding != "none" and gpus == 1:
            continue
        layout = replace(base, world_size=gpus, sharding=sharding, activation_checkpointing=checkpointing)
        fitting = [replace(layout, micro_batch=b, grad_accum=per_gpu // b) for b in _divisors_desc(per_gpu)]
        yield [w for w in fitting if memory_estimate_gb(w) <= capacity]


def best_config(base: Workload, spec: GpuSpec, gpus: int, per_gpu: int) -> Config | None:
    """The fastest configuration in the first memory layout that fits at all; None when none fits."""
    for fitting in _candidates(base, spec, gpus, per_gpu):
        configs = []
        for w in fitting:
            phases = phases_for(w, spec)
            configs.append(Config(w, w.tokens_per_step / phases.step_s, modelled_efficiency(w, spec, gpus, phases)))
        if configs:
            return max(configs, key=lambda c: c.node_tokens_per_sec)
    return None


def what_would_fit(base: Workload, spec: GpuSpec, gpus: int) -> str:
    """For a model that fits in no layout: the memory it needs, and how many of this GPU would hold it with FSDP."""
    smallest = replace(base, micro_batch=1, grad_accum=1, world_size=gpus, sharding="full", activation_checkpointing=True)
    need = memory_estimate_gb(replace(smallest, sharding="none" if gpus == 1 else "full"))
    for n in (2, 4, 8, 16, 32, 64, 128):
        if n > gpus and memory_estimate_gb(replace(smallest, world_size=n)) <= (spec.memory_gb or 0):
            return (
                f"does not fit on {gpus}× {spec.name} ({need:,.1f} GB needed at micro-batch 1, {spec.memory_gb:g} GB per GPU);"
                f" would fit on {n}× {spec.name} with FSDP and activation checkpointing"
            )
    need_text = f"{need:,.1f} GB needed at micro-batch 1 of {spec.memory_gb:g} GB"
    return f"does not fit on {spec.name} ({need_text}); try a GPU with more memory"


# What each layout costs in speed. Sharding costs no compute: ZeRO-1 (ZeroRedundancyOptimizer under DDP) keeps DDP's
# all-reduce and then broadcasts each rank's updated weights, half as much again and after the optimizer, not
# overlapped; FSDP2 also moves about 1.5x DDP's bytes (weights gathered in forward and again in backward, gradients
# reduce-scattered), overlapped with compute. Checkpointing repeats every block's forward, about a quarter more FLOPs for
# GPT-2 (bench/flops.py: 1.24x at 124M, T = 1024), and no overlap hides compute.
RECOMPUTE = "every block's forward again in backward (≈ +25% FLOPs)"
SHARDING_COST = {
    "none": "",
    "optimizer": "no extra compute; about 1.5x DDP's communication, the weights' broadcast not overlapped",
    "full": "no extra compute; 1.5x DDP's communication, overlapped with compute",
}


@dataclass(frozen=True)
class Switch:
    """One memory layout as `gptbench run` asks for it, and what it costs."""

    sharding: str  # none | optimizer | full (Workload.sharding, `run --shard`)
    activation_checkpointing: bool

    @property
    def flags(self) -> str:
        """The `gptbench run` options that ask for it."""
        parts = [f"--shard {self.sharding}"] if self.sharding != "none" else []
        parts += ["--activation-checkpointing"] if self.activation_checkpointing else []
        return " ".join(parts) or "(no switch)"

    @property
    def cost(self) -> str:
        """What it costs in speed, in words."""
        parts = [RECOMPUTE] if self.activation_checkpointing else []
        parts += [SHARDING_COST[self.sharding]] if self.sharding != "none" else []
        return "; ".join(parts) or "nothing"


@dataclass(frozen=True)
class Fit:
    switch: Switch
    breakdown: MemoryBreakdown  # one rank's estimated peak with the switch on


def cheapest_fit(w: Workload, capacity_gb: float) -> Fit | None:
    """The first layout in LAYOUTS' order with which `w` (over its world_size ranks) is estimated to fit
    `capacity_gb` per rank; sharding is only tried with two or more ranks. None when nothing fits at this batch."""
    for sharding, checkpointing in LAYOUTS:
        if sharding != "none" and w.world_size < 2:
            continue
        breakdown = memory_breakdown(replace(w, sharding=sharding, activation_checkpointing=checkpointing))
        if breakdown.total_gb <= capacity_gb:
            return Fit(Switch(sharding, checkpointing), breakdown)
    return None
