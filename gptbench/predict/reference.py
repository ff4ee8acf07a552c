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
from gptbench.predict.workload import Workload

REFERENCE_DIR = Path(__file__).with_name("reference")  # package data: `pip install` without the checkout has it

# What makes two steps the same configuration for speed: everything in a Workload but how it is split into optimizer
# steps (grad_accum: the optimizer's share of a step is modelled and small), the ranks' count (tokens/s is per GPU
# here) and the positions' table (its size costs nothing per token).
NOT_CONFIGURATION = ("grad_accum", "world_size", "block_size")
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
    """`measured by gptbench on 2026-12-04 (median of 30 steps)`."""
    quality = f", {point.quality}" if point.quality else ""
    return f"measured by {point.measured_by or point.source_group} on {point.observed}{quality}"


def point_name(point: CalibrationPoint) -> str:
    """A point as a reader finds it: a calibration.csv row name, or a reference report file and run."""
    return point.name.replace("#", " run ") if "#" in point.name else f"calibration.csv {point.name}"
