"""Where a projected step's time goes: the projection's operations in five groups, each with its share of the step,
whether it is bound by compute or by memory traffic, and which switch would change it. Never imports torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from gptbench.cloud.estimate import Throughput
from gptbench.cloud.throughput import pick_run, precision_for
from gptbench.errors import GptbenchError
from gptbench.hardware.specs import GpuSpec, match_device
from gptbench.predict.calibration import workload_from_config
from gptbench.predict.projection import EFFICIENCIES, Efficiencies, Op, op_times_s, peak_for_workload, weighted_ops
from gptbench.predict.workload import Workload

GROUPS = ("matmuls", "attention", "LM head + cross-entropy", "elementwise", "optimizer")


@dataclass(frozen=True)
class GroupTime:
    """One group of operations in one projected step (all micro-batches and the optimizer step included)."""

    group: str
    time_s: float
    share: float  # of the modelled step
    bound: str  # compute | memory | mixed (by where the group's time is spent)
    switch: str  # what would change it


@dataclass(frozen=True)
class Breakdown:
    """The modelled step, group by group, and (when a measurement of this configuration exists) the measured step."""

    gpu: str
    step_time_s: float  # modelled: the sum of the groups
    groups: tuple[GroupTime, ...]
    measured_step_time_s: float | None = None
    measured_source: str | None = None
    measured_basis: str | None = None  # measured (this configuration) | carried (the nearest measurement, moved here)

    def to_dict(self) -> dict[str, Any]:
        """The --explain table as JSON-ready data (times in seconds, shares as 0-1 fractions)."""
        return {
            "gpu": self.gpu,
            "basis": "modelled",
            "step_time_s": self.step_time_s,
            "groups": [asdict(g) for g in self.groups],
            "measured_step_time_s": self.measured_step_time_s,
            "measured_source": self.measured_source,
            "measured_basis": self.measured_basis,
        }


def group_of(op: Op) -> str:
    """Which of GROUPS an operation belongs to, by its name and phase."""
    if op.phase == "optimizer":
        return "optimizer"
    if "lm head" in op.name or "cross-entropy" in op.name:
        return "LM head + cross-entropy"
    if "attention" in op.name or "head transpose" in op.name:
        return "attention"
    return "matmuls" if "matmul" in op.name else "elementwise"


def switch_for(group: str, w: Workload) -> str:
    """The option that would move this group's time, given the workload as asked."""
    if group == "matmuls":
        if w.dtype == "fp32":
            return "--dtype bf16: the matmuls move to the bf16 tensor-core peak"
        return "at the tensor-core peak already: only a faster GPU (or a smaller model) changes it"
    if group == "attention":
        if w.attention == "naive":
            return "--attention sdpa (flash): the T x T scores never go through memory; naive attention dominates long --seq"
        return "flash attention already; grows with --seq (T^2 work)"
    if group == "LM head + cross-entropy":
        if w.vocab_size % 64:
            return f"vocabulary {w.vocab_size} is not a multiple of 64: padded (50304, gptbench's default) the LM head is faster"
        if not w.compile:
            return "--compile fuses the logits' cast, softmax and loss"
        return "padded vocabulary and fused loss already; grows with the vocabulary"
    if group == "elementwise":
        if not w.compile:
            return "--compile fuses LayerNorm, residual adds, GELU and casts (fewer passes over memory)"
        return "fused by torch.compile already; memory bandwidth bound"
    return "once per optimizer step: a larger --batch spreads it over more tokens; fused AdamW already"


def _bound(compute_s: float, memory_s: float) -> str:
    total = compute_s + memory_s
    if total == 0 or compute_s >= 2 * total / 3:
        return "compute"
    return "memory" if memory_s >= 2 * total / 3 else "mixed"


def breakdown(w: Workload, spec: GpuSpec, eff: Efficiencies = EFFICIENCIES) -> Breakdown:
    """The projected step of `w` on `spec`, split into GROUPS with their share, bound and switch."""
    peak, _ = peak_for_workload(w, spec)
    bw = spec.memory_bw_gbs or 0.0
    compute = dict.fromkeys(GROUPS, 0.0)
    memory = dict.fromkeys(GROUPS, 0.0)
    for op, runs in weighted_ops(w):
        flops_s, bytes_s = op_times_s(op, peak, bw, eff)
        # the roofline charges the slower side: the op's time counts as compute- or memory-bound accordingly
        if flops_s >= bytes_s:
            compute[group_of(op)] += runs * flops_s
        else:
            memory[group_of(op)] += runs * bytes_s
    step = sum(compute.values()) + sum(memory.values())
    groups = tuple(
        GroupTime(g, compute[g] + memory[g], (compute[g] + memory[g]) / step, _bound(compute[g], memory[g]), switch_for(g, w))
        for g in GROUPS
    )
    return Breakdown(spec.name, step, groups)


def explain_gpu(spec: GpuSpec, w: Workload, throughput: Throughput) -> Breakdown:
    """The modelled step for `w` on `spec`; beside it the measured step when `throughput` measured this configuration."""
    w, _ = precision_for(spec, w)
    modelled = breakdown(w, spec)
    if throughput.basis not in ("measured", "carried"):
        return modelled
    # Measured at this configuration, or carried here from the nearest measurement: modelled / carried is then the
    # model's own error at that measurement, which carrying corrects.
    per_gpu = throughput.tokens_per_sec / throughput.gpus  # the same configuration: per-GPU batch, seq and precision
    step = w.tokens_per_step / per_gpu
    return replace(modelled, measured_step_time_s=step, measured_source=throughput.source, measured_basis=throughput.basis)


def explain_report(path: str | Path, run_index: int | None = None, specs_path: str | Path | None = None) -> Breakdown:
    """The modelled step of a report's run (the fastest ok run, or `run_index`) beside its measured step time."""
    report, _, index = pick_run(path, run_index)
    run, accel = report.runs[index], report.machine.accelerator
    spec = match_device(accel.name or "", specs_path) if accel.kind == "cuda" else None
    if spec is None:
        raise GptbenchError(
            f"--explain: {path} ran on {accel.name or accel.kind}, not a GPU in the spec table; the model describes GPUs only"
        )
    modelled = breakdown(workload_from_config(run.config), spec)
    measured = run.config.tokens_per_step / (run.result.tokens_per_sec or 1.0)  # pick_run only returns ok runs
    return replace(modelled, measured_step_time_s=measured, measured_source=f"{path} run {index}", measured_basis="measured")
