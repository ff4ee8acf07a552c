"""What the batch search predicts before it starts a probe: memory grows close to linearly in the micro-batch
(weights, gradients and optimizer state are fixed; activations, logits and their gradients scale with it), so a
line fitted on the probes already made, with the projection's memory model as the prior slope while there is only
one, says which batch would not fit without running it. Pure functions: no torch, no processes."""

from __future__ import annotations

from dataclasses import dataclass

from gptbench.bench.config import BenchConfig
from gptbench.predict.workload import memory_estimate_gb, workload_of

# The projection counts the tensors a step keeps; eager CPU steps keep more (temporaries the allocator has not
# returned yet, bf16 copies autocast makes on the fly). Measured on the tiny preset at seq 128, bf16 autocast, sdpa
# (the ablate ladder's top rung; 2-core CPU VM, 2026-12-04): 0.08 GB per sample from batch 1 to 2, where the prior
# is used, against the projection's 0.065; higher up the line steepens (0.10 GB from 16 to 32, 0.14 from 32 to 48),
# which is why it is refitted on the two largest probes, and why the probe's cap keeps a margin above the bound.
PRIOR_SAFETY = 1.5


@dataclass(frozen=True)
class MemoryLine:
    """peak_gb ~ fixed_gb + per_sample_gb x micro_batch, and what it was fitted on."""

    fixed_gb: float
    per_sample_gb: float
    basis: str  # in words, for the probes table: which probes (and prior) the line goes through

    def predict_gb(self, micro_batch: int) -> float:
        """The predicted peak memory of a probe at `micro_batch`."""
        return self.fixed_gb + self.per_sample_gb * micro_batch


def prior_per_sample_gb(config: BenchConfig) -> float | None:
    """GB per extra sample by the projection's memory model (gptbench.predict.projection), times PRIOR_SAFETY;
    None for a --model-factory module, whose shape gptbench does not know."""
    if config.factory is not None:
        return None
    step = {"seq_len": config.seq_len, "grad_accum": config.grad_accum, "dtype": config.dtype, "tf32": config.tf32}
    how = {"compile": False, "attention": config.attention, "adamw": config.adamw}  # probes run eager
    how["activation_checkpointing"] = config.activation_checkpointing  # recomputation shrinks the slope ~4x (1558M)

    def need(batch: int) -> float:
        return memory_estimate_gb(workload_of(config.model, micro_batch=batch, **step, **how))

    return (need(2) - need(1)) * PRIOR_SAFETY


def fit_memory(points: list[tuple[int, float]], prior_per_sample: float | None) -> MemoryLine | None:
    """The line through the two largest probed batches (where activations dominate; the small ones are mostly
    noise around the process's fixed memory); with one batch, or a slope that noise made flat, the prior's slope
    through the largest. None when nothing can be said (no probe yet, or no prior and one probe)."""
    by_batch = dict(sorted(points))
    batches = sorted(by_batch)
    if len(batches) >= 2:
        b1, b2 = batches[-2:]
        slope = (by_batch[b2] - by_batch[b1]) / (b2 - b1)
        if slope > 0:
            return MemoryLine(by_batch[b2] - slope * b2, slope, f"line through batches {b1} and {b2}")
    if not batches or prior_per_sample is None:
        return None
    b = batches[-1]
    basis = f"batch {b}'s {by_batch[b]:.2f} GB + {prior_per_sample:.3f} GB per sample (projection prior)"
    return MemoryLine(by_batch[b] - prior_per_sample * b, prior_per_sample, basis)


def predicted_over(
    micro_batch: int, points: list[tuple[int, float]], prior_per_sample: float | None, bound_gb: float
) -> tuple[float, str] | None:
    """(predicted GB, basis) when a probe at `micro_batch` is predicted above `bound_gb`: it must not start."""
    line = fit_memory(points, prior_per_sample)
    if line is None:
        return None
    predicted = line.predict_gb(micro_batch)
    return (predicted, line.basis) if predicted > bound_gb else None
