"""The reference set: every measurement gptbench answers from before it models anything. The published rows of
calibration.csv and gptbench's own reference reports (shipped in gptbench/predict/reference/, the data behind
reports/reference/ in the checkout), each point with its provenance (who measured it, when, where it can be read
again) and its quality (a median of many steps, an average, or a single step). Torch-free.
"""

from __future__ import annotations

from dataclasses import fields
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
