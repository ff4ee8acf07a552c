"""The reference set: every measurement gptbench answers from before it models anything. The published rows of
calibration.csv and gptbench's own reference reports (shipped in gptbench/predict/reference/, the data behind
reports/reference/ in the checkout), each point with its provenance (who measured it, when, where it can be read
again) and its quality (a median of many steps, an average, or a single step). Torch-free.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path

from gptbench.predict.calibration import CalibrationPoint, published_points, report_points
from gptbench.predict.projection import CALIBRATED_ON
from gptbench.predict.workload import Workload

REFERENCE_DIR = Path(__file__).with_name("reference")  # package data: `pip install` without the checkout has it

# What makes two steps the same configuration for speed: everything in a Workload but the ranks' count (tokens/s is
# per GPU here) and the positions' table (its size costs nothing per token). Gradient accumulation counts: the
# optimizer runs once per step, so 32 micro-batches per step spread its cost 32 times thinner.
NOT_CONFIGURATION = ("world_size", "block_size")
CONFIGURATION = tuple(f.name for f in fields(Workload) if f.name not in NOT_CONFIGURATION)


@lru_cache(maxsize=1)
def reference_points() -> tuple[CalibrationPoint, ...]:
    """Every point of the reference set: the published rows, then the shipped gptbench reference runs."""
    return (*published_points(), *report_points(REFERENCE_DIR)[0])


def differences(asked: Workload, measured: Workload) -> list[str]:
    """What in `measured` differs from `asked`, among what changes speed, as `micro_batch 128 (asked 16)`."""
    return [
        f"{name} {getattr(measured, name)} (asked {getattr(asked, name)})"
        for name in CONFIGURATION
        if getattr(asked, name) != getattr(measured, name)
    ]


def one_gpu(points: tuple[CalibrationPoint, ...] | list[CalibrationPoint], gpu: str) -> list[CalibrationPoint]:
    """The points measured on one GPU of kind `gpu` (a multi-GPU point's per-GPU rate carries its scaling, which
    the step model does not know, so it answers nothing here)."""
    return [p for p in points if p.gpu == gpu and p.gpus == 1]


def single_step(point: CalibrationPoint) -> bool:
    """Whether the figure is one timed step rather than a median or average of many."""
    return point.quality == "single step"


def provenance(point: CalibrationPoint) -> str:
    """`by gptbench (2026-12-04; median of 30 steps)`: who measured the point, when, and what the figure is."""
    quality = f"; {point.quality}" if point.quality else ""
    return f"by {point.measured_by or point.source_group} ({point.observed}{quality})"


def point_name(point: CalibrationPoint) -> str:
    """A point as a reader finds it: a calibration.csv row name, or a reference report file and run."""
    return point.name.replace("#", " run ") if "#" in point.name else f"calibration.csv {point.name}"


def fitted_on() -> str:
    """What the roofline's efficiencies were fitted on, counted by kind: `19 published measurements + 2 gptbench
    reference runs`."""
    published = {p.name for p in published_points()}
    mine = [name for name in CALIBRATED_ON if name not in published]
    return f"{len(CALIBRATED_ON) - len(mine)} published measurements + {len(mine)} gptbench reference runs"


@dataclass(frozen=True)
class ReferenceCheck:
    """"Is this normal?": a run beside the reference measurement of its GPU and configuration, or why there is none."""

    device: str  # the accelerator as the report names it
    tokens_per_sec_per_gpu: float  # this run's
    reference: str | None = None  # the point (calibration.csv row, or reference report and run)
    reference_tokens_per_sec: float | None = None  # one GPU
    measured: str = ""  # who measured the reference, when, and what its figure is
    by: str = ""  # who and when, short: `gptbench, 2026-12-04`
    why_none: str = ""

    @property
    def ratio(self) -> float | None:
        """This run's tokens/s per GPU over the reference's; None without one."""
        return self.tokens_per_sec_per_gpu / self.reference_tokens_per_sec if self.reference_tokens_per_sec else None

    @property
    def line(self) -> str:
        """`NVIDIA H200 · this configuration: 477,672 tok/s (gptbench, 2026-12-04): you 0.98×`: one summary row."""
        if self.ratio is None:
            return f"{self.device} · {self.why_none}"
        rate = f"{self.reference_tokens_per_sec:,.0f} tok/s"
        return f"{self.device} · this configuration: {rate} ({self.by}): you {self.ratio:.2f}×"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: the reference, its rate and the ratio, or why there is none."""
        return {**asdict(self), "ratio": self.ratio, "line": self.line}


def check_against_reference(device: str, gpu: str | None, w: Workload | None, tokens_per_sec_per_gpu: float) -> ReferenceCheck:
    """The reference measurement of GPU kind `gpu` (a gpus.csv name; None for a CPU, MPS or an unknown GPU) at the
    configuration `w`, beside this run's rate per GPU; with several, their median."""
    if gpu is None or w is None:
        why = "no reference: the reference set holds GPUs only"
        return ReferenceCheck(device, tokens_per_sec_per_gpu, why_none=why)
    on_gpu = one_gpu(reference_points(), gpu)
    same = [p for p in on_gpu if not differences(w, p.workload)]
    if not same:
        why = f"no reference at this configuration ({len(on_gpu)} at others)" if on_gpu else "no reference run of this GPU"
        return ReferenceCheck(device, tokens_per_sec_per_gpu, why_none=why)
    rate = statistics.median(p.tokens_per_sec for p in same)
    who, by = ", ".join(provenance(p) for p in same), "; ".join(f"{p.measured_by}, {p.observed}" for p in same)
    return ReferenceCheck(device, tokens_per_sec_per_gpu, point_name(same[0]), rate, who, by)
