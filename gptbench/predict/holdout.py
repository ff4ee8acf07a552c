"""How far each step of the estimate's order can be trusted, measured by holding out what it would not know.

- Transfers (the order's second step: a measurement on this GPU carried to another configuration by the model's ratio):
  every ordered pair of one-GPU reference points on the same GPU, the target predicted from the other point by the
  ratio of a model fitted without the target. Today that is the book's four A100 rows and the three H200 runs.
- GPUs held out (the third step: nothing measured on this GPU): every point of one GPU projected by a model fitted
  without that GPU's points and without every other point of their sources, as if nobody had measured that GPU.

Errors are ln(predicted / measured) (+0.41 is 1.5x too fast). They are computed by `python
benchmarks/projection_vs_measured.py --holdout` and stored below so `estimate` answers without refitting;
tests/test_holdout.py recomputes them and fails when they drift.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gptbench.hardware.specs import find_gpu
from gptbench.predict.calibration import CalibrationPoint, fit, projected_per_gpu
from gptbench.predict.projection import Efficiencies, project
from gptbench.predict.workload import Workload


@dataclass(frozen=True)
class Transfer:
    """One held-out transfer: `target` predicted from `start` on the same GPU."""

    start: str
    target: str
    gpu: str
    error: float  # ln(predicted / measured)
    unaligned: bool  # the two differ in whether the vocabulary is a multiple of 64: the ratio leans on that factor


@dataclass(frozen=True)
class GpuHeldOut:
    """One point projected by a model that saw nothing of its GPU nor of its sources."""

    point: str
    gpu: str
    error: float


# (start, target, GPU, error, crosses the vocabulary's alignment), as `projection_vs_measured.py --holdout` prints them.
TRANSFERS: tuple[Transfer, ...] = (
    Transfer('raschka-a100-compile', 'raschka-a100-flash-eager', 'a100-sxm4-40gb', 0.163, False),
    Transfer('raschka-a100-vocab64', 'raschka-a100-flash-eager', 'a100-sxm4-40gb', -0.012, True),
    Transfer('raschka-a100-batch32', 'raschka-a100-flash-eager', 'a100-sxm4-40gb', 0.063, True),
    Transfer('raschka-a100-flash-eager', 'raschka-a100-compile', 'a100-sxm4-40gb', -0.168, False),
    Transfer('raschka-a100-vocab64', 'raschka-a100-compile', 'a100-sxm4-40gb', -0.349, True),
    Transfer('raschka-a100-batch32', 'raschka-a100-compile', 'a100-sxm4-40gb', -0.273, True),
    Transfer('raschka-a100-flash-eager', 'raschka-a100-vocab64', 'a100-sxm4-40gb', 0.098, True),
    Transfer('raschka-a100-compile', 'raschka-a100-vocab64', 'a100-sxm4-40gb', 0.263, True),
    Transfer('raschka-a100-batch32', 'raschka-a100-vocab64', 'a100-sxm4-40gb', 0.075, False),
    Transfer('raschka-a100-flash-eager', 'raschka-a100-batch32', 'a100-sxm4-40gb', 0.023, True),
    Transfer('raschka-a100-compile', 'raschka-a100-batch32', 'a100-sxm4-40gb', 0.188, True),
    Transfer('raschka-a100-vocab64', 'raschka-a100-batch32', 'a100-sxm4-40gb', -0.075, False),
    Transfer('20261204-175913_vm_nvidia-h200_acceptance-default.json#0', 'runpod-h200-b128', 'h200', 0.003, False),
    Transfer('20261204-180045_vm_nvidia-h200_acceptance-batch.json#0', 'runpod-h200-b128', 'h200', 0.082, False),
    Transfer('runpod-h200-b128', '20261204-175913_vm_nvidia-h200_acceptance-default.json#0', 'h200', -0.003, False),
    Transfer(
        '20261204-180045_vm_nvidia-h200_acceptance-batch.json#0',
        '20261204-175913_vm_nvidia-h200_acceptance-default.json#0',
        'h200', 0.079, False,
    ),
    Transfer('runpod-h200-b128', '20261204-180045_vm_nvidia-h200_acceptance-batch.json#0', 'h200', -0.082, False),
    Transfer(
        '20261204-175913_vm_nvidia-h200_acceptance-default.json#0',
        '20261204-180045_vm_nvidia-h200_acceptance-batch.json#0',
        'h200', -0.079, False,
    ),
)
# (point, GPU, error)
GPUS_HELD_OUT: tuple[GpuHeldOut, ...] = (
    GpuHeldOut('raschka-a100-flash-eager', 'a100-sxm4-40gb', 0.479),
    GpuHeldOut('raschka-a100-compile', 'a100-sxm4-40gb', 0.330),
    GpuHeldOut('raschka-a100-vocab64', 'a100-sxm4-40gb', 0.202),
    GpuHeldOut('raschka-a100-batch32', 'a100-sxm4-40gb', 0.128),
    GpuHeldOut('llmc-8xa100', 'a100-sxm4-80gb', -0.255),
    GpuHeldOut('runpod-a100-sxm4-80gb-b64', 'a100-sxm4-80gb', -0.206),
    GpuHeldOut('runpod-b200-b128', 'b200', 0.360),
    GpuHeldOut('runpod-h200-b128', 'h200', 0.075),
    GpuHeldOut('20261204-175913_vm_nvidia-h200_acceptance-default.json#0', 'h200', 0.071),
    GpuHeldOut('20261204-180045_vm_nvidia-h200_acceptance-batch.json#0', 'h200', -0.007),
    GpuHeldOut('runpod-h100-sxm-b64', 'h100-sxm', 0.053),
    GpuHeldOut('llmc-8xh100', 'h100-sxm', 0.035),
    GpuHeldOut('runpod-h100-pcie-b64', 'h100-pcie', 0.189),
    GpuHeldOut('runpod-h100-nvl-b128', 'h100-nvl', 0.540),
    GpuHeldOut('runpod-a100-pcie-80gb-b64', 'a100-pcie-80gb', -0.069),
    GpuHeldOut('runpod-l40s-b32', 'l40s', 0.115),
    GpuHeldOut('runpod-l40-b32', 'l40', 0.007),
    GpuHeldOut('runpod-rtx5090-b32', 'rtx5090', -0.461),
    GpuHeldOut('runpod-a6000-b64', 'a6000', -0.094),
    GpuHeldOut('runpod-l4-b16', 'l4', 0.274),
    GpuHeldOut('nanogpt-rtx4090', 'rtx4090', -0.198),
)


def aligned(w: Workload) -> bool:
    """Whether the LM head's vocabulary is a multiple of 64 (else the model's unaligned factor applies)."""
    return w.vocab_size % 64 == 0


def carried(
    rate: float, start: Workload, target: Workload, gpu: str, eff: Efficiencies, specs_path: str | Path | None = None
) -> float:
    """A measured per-GPU rate at `start` carried to `target` on the same GPU by the model's ratio."""
    spec = find_gpu(gpu, specs_path)
    return rate * project(target, spec, eff).tokens_per_sec / project(start, spec, eff).tokens_per_sec


def transfers(points: Sequence[CalibrationPoint], specs_path: str | Path | None = None) -> list[Transfer]:
    """Every ordered pair of one-GPU points on the same GPU: the target predicted from the start, the model's ratio
    fitted without the target."""
    single = [p for p in points if p.gpus == 1]
    out = []
    for target in single:
        starts = [p for p in single if p.gpu == target.gpu and p.name != target.name]
        if not starts:
            continue
        eff = fit([p for p in points if p.name != target.name], specs_path)
        for start in starts:
            predicted = carried(start.tokens_per_sec, start.workload, target.workload, target.gpu, eff, specs_path)
            cross = aligned(start.workload) != aligned(target.workload)
            out.append(Transfer(start.name, target.name, target.gpu, math.log(predicted / target.tokens_per_sec), cross))
    return out


def gpus_held_out(points: Sequence[CalibrationPoint], specs_path: str | Path | None = None) -> list[GpuHeldOut]:
    """Every point projected by a model fitted without its GPU's points and their sources' points, GPU by GPU."""
    out, fits = [], {}
    for gpu in dict.fromkeys(p.gpu for p in points):
        own = [p for p in points if p.gpu == gpu]
        sources = {p.source_group for p in own}
        held = frozenset(p.name for p in points if p.gpu == gpu or p.source_group in sources)
        if held not in fits:
            fits[held] = fit([p for p in points if p.name not in held], specs_path)
        for p in own:
            out.append(GpuHeldOut(p.name, gpu, math.log(projected_per_gpu(p, fits[held], specs_path) / p.tokens_per_sec_per_gpu)))
    return out


def width(errors: Sequence[float]) -> float:
    """The half-width of a symmetric log band that holds every error."""
    return max((abs(e) for e in errors), default=0.0)


def transfer_width(unaligned: bool, table: Sequence[Transfer] = TRANSFERS) -> float:
    """The band of a carried estimate: the largest held-out transfer error of its kind (across the vocabulary's
    alignment, or not); an alignment change is never narrower than an aligned one."""
    same = width([t.error for t in table if not t.unaligned])
    return max(same, width([t.error for t in table if t.unaligned])) if unaligned else same


def gpu_width(table: Sequence[GpuHeldOut] = GPUS_HELD_OUT) -> float:
    """The band of a projection for a GPU nobody measured: the largest error of a GPU held out with its sources."""
    return width([g.error for g in table])


def factors(half_width: float) -> tuple[float, float]:
    """The slow and fast end of a symmetric log band, as factors on the estimate."""
    return math.exp(-half_width), math.exp(half_width)
