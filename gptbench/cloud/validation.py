"""How far a projection can be trusted: leave-one-out over every calibration point (fit without it, project it), and
the evidence label and error band that each GPU's projection carries because of it.

The leave-one-out errors are fitted by `python benchmarks/projection_vs_measured.py --fit` and stored below, so that
`estimate` answers without refitting; tests/test_validation.py recomputes them and fails when they drift from the data.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from gptbench.cloud.calibration import CalibrationPoint, fit, projected_per_gpu
from gptbench.cloud.projection import Efficiencies
from gptbench.errors import GptbenchError
from gptbench.hardware.specs import GpuSpec, gpu_specs

# Every held-out point must be projected within this factor of its measurement (projected / measured - 1), and
# tests/test_validation.py holds the leave-one-out errors (not the in-sample ones) to it. It is the worst held-out
# error on record, rounded up: a statement of how wrong a projection has been, not a target.
LEAVE_ONE_OUT_BOUND = 0.75

# (point, GPU, leave-one-out error = projected without the point / measured - 1), as printed by
# `python benchmarks/projection_vs_measured.py --fit` (calibration.csv plus committed GPU reports).
LEAVE_ONE_OUT: tuple[tuple[str, str, float], ...] = (
    ("raschka-a100-flash-eager", "a100-sxm4-40gb", 0.180),
    ("raschka-a100-compile", "a100-sxm4-40gb", -0.159),
    ("raschka-a100-vocab64", "a100-sxm4-40gb", 0.189),
    ("raschka-a100-batch32", "a100-sxm4-40gb", 0.102),
    ("llmc-8xa100", "a100-sxm4-80gb", -0.237),
    ("runpod-b200-b128", "b200", 0.413),
    ("runpod-h200-b128", "h200", 0.031),
    ("runpod-h100-sxm-b64", "h100-sxm", 0.012),
    ("runpod-h100-pcie-b64", "h100-pcie", 0.177),
    ("runpod-h100-nvl-b128", "h100-nvl", 0.717),
    ("runpod-a100-sxm4-80gb-b64", "a100-sxm4-80gb", -0.199),
    ("runpod-a100-pcie-80gb-b64", "a100-pcie-80gb", -0.109),
    ("runpod-l40s-b32", "l40s", 0.095),
    ("runpod-l40-b32", "l40", -0.036),
    ("runpod-rtx5090-b32", "rtx5090", -0.420),
    ("runpod-a6000-b64", "a6000", -0.130),
    ("runpod-l4-b16", "l4", 0.284),
    ("llmc-8xh100", "h100-sxm", -0.006),
    ("nanogpt-rtx4090", "rtx4090", -0.193),
)


@dataclass(frozen=True)
class HeldOut:
    """One calibration point projected by a model fitted on all the other points."""

    name: str
    gpu: str
    measured_per_gpu: float
    projected_per_gpu: float
    fitted: Efficiencies  # the efficiencies fitted without this point

    @property
    def error(self) -> float:
        """Projected / measured - 1: +0.20 means the projection was 20% too fast."""
        return self.projected_per_gpu / self.measured_per_gpu - 1


def leave_one_out(
    points: Sequence[CalibrationPoint], specs_path: str | Path | None = None, only: Collection[str] | None = None
) -> list[HeldOut]:
    """For each point (or each named in `only`): fit the efficiencies on the others, project it, keep the result."""
    if len(points) < 2:
        raise GptbenchError("leave-one-out needs at least two calibration points")
    held = []
    for i, point in enumerate(points):
        if only is not None and point.name not in only:
            continue
        fitted = fit([p for j, p in enumerate(points) if j != i], specs_path)
        projected = projected_per_gpu(point, fitted, specs_path)
        held.append(HeldOut(point.name, point.gpu, point.tokens_per_sec_per_gpu, projected, fitted))
    return held


@dataclass(frozen=True)
class Evidence:
    """What backs one GPU's projection, and the band its projected figures carry."""

    kind: str  # validated | same architecture | extrapolation
    label: str
    points: int  # calibration points measured on this GPU
    band: tuple[float, float]  # factors on projected tokens/s: (slow end, fast end)
    band_basis: str


def band_factors(errors: Sequence[float]) -> tuple[float, float]:
    """Factors on a projected tokens/s that span the leave-one-out errors: measured = projected / (1 + error)."""
    if not errors:
        return (1.0, 1.0)
    return (1 / (1 + max(errors)), 1 / (1 + min(errors)))


def _percent_range(errors: Sequence[float]) -> str:
    low, high = min(errors), max(errors)
    return f"{low:+.0%}" if abs(high - low) < 0.005 else f"{low:+.0%} to {high:+.0%}"


def _count(n: int, what: str) -> str:
    return "" if n == 0 else f"{n} {what}{'s' if n > 1 else ''}"


def band_basis(held_out: Sequence[tuple[str, str, float]] = LEAVE_ONE_OUT) -> str:
    """Where a projection's band comes from, in words."""
    errors = [error for _, _, error in held_out]
    if not errors:
        return "no calibration points"
    return f"band: the range of leave-one-out errors over all {len(errors)} calibration points ({_percent_range(errors)})"


def evidence_for(
    spec: GpuSpec, specs_path: str | Path | None = None, held_out: Sequence[tuple[str, str, float]] = LEAVE_ONE_OUT
) -> Evidence:
    """The evidence label for projecting on `spec`: points on this very GPU, on its architecture, or none."""
    errors = [error for _, _, error in held_out]
    if not errors:
        return Evidence("extrapolation", "datasheet extrapolation: not validated", 0, (1.0, 1.0), band_basis(held_out))
    band, basis = band_factors(errors), band_basis(held_out)
    own = [(name, error) for name, gpu, error in held_out if gpu == spec.name]
    if own:
        reports = sum(1 for name, _ in own if "#" in name)  # report points are named FILE#RUN (calibration.report_points)
        counts = [_count(len(own) - reports, "published point"), _count(reports, "gptbench report run")]
        evidence = " and ".join(c for c in counts if c)
        label = f"validated: {evidence} on this GPU, leave-one-out error {_percent_range([e for _, e in own])}"
        return Evidence("validated", label, len(own), band, basis)
    names = {row.name: row.architecture for row in gpu_specs(specs_path)}
    siblings = sorted({gpu for _, gpu, _ in held_out if spec.architecture and names.get(gpu) == spec.architecture})
    if siblings:
        label = f"same architecture ({spec.architecture}) as a validated GPU ({', '.join(siblings)}); not validated on this GPU"
        return Evidence("same architecture", label, 0, band, basis)
    return Evidence("extrapolation", "datasheet extrapolation: not validated", 0, band, basis)
