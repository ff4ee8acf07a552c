"""The order every estimate follows (`estimate`, `plan`, the catalog, `--explain`): a measurement before a model.

1. This GPU measured at this configuration: that measurement (several: their median), named with who measured it and
   when; its band the measurements' spread, or the run's p10-p90 steps.
2. This GPU measured at other configurations: the nearest of those measurements carried across by the model's ratio
   between the two configurations; its band what such transfers achieve held out (holdout.TRANSFERS).
3. Nothing measured on this GPU: the roofline; its band what it achieves on GPUs held out with their sources
   (holdout.GPUS_HELD_OUT), twice that for an architecture of which no GPU was measured.

Memory follows the same order: a reserved figure measured at this configuration first, else the memory model
(workload.memory_breakdown, corrected by the measured compiled runs). Per GPU throughout; torch-free.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from gptbench.hardware.specs import GpuSpec, gpu_specs
from gptbench.predict.calibration import CalibrationPoint
from gptbench.predict.holdout import TRANSFERS, aligned, carried, factors, gpu_width, transfer_width
from gptbench.predict.projection import EFFICIENCIES, project
from gptbench.predict.reference import CONFIGURATION, differences, one_gpu, point_name, provenance, reference_points, single_step
from gptbench.predict.workload import Workload, memory_breakdown

# Said wherever an estimate leans on the unaligned-vocabulary factor (a vocabulary that is not a multiple of 64,
# as the book-* presets' 50257): only one source's rows identify it, and held out with them it falls to 1.0.
UNALIGNED = (
    f"leans on the unaligned-vocabulary factor ({EFFICIENCIES.unaligned:g}), identified by one source only (the book's "
    "A100 rows; held out with them it falls to 1.0, none): the band widens to cover that"
)


@dataclass(frozen=True)
class Sourced:
    """One GPU's tokens/s for a configuration from the first source the order finds, with its band and its words."""

    step: str  # measured | carried | projected
    tokens_per_sec: float  # one GPU
    low: float | None  # the band's slow end (None: no spread known)
    high: float | None
    label: str  # what backs the figure, naming the point and who measured it
    band_basis: str  # where the band comes from
    source: str  # the point (file and run, or calibration.csv row), or the projection
    points: tuple[str, ...]  # the reference points used
    memory_gb: float  # one rank's peak: measured reserved + context, or the memory model
    memory_basis: str
    notes: tuple[str, ...] = ()


def changed_fields(a: Workload, b: Workload) -> set[str]:
    """The configuration fields in which two steps differ."""
    return {name for name in CONFIGURATION if getattr(a, name) != getattr(b, name)}


@lru_cache(maxsize=1)
def checked_fields() -> frozenset[str]:
    """The configuration fields some held-out transfer changed (holdout.TRANSFERS): the changes its band covers."""
    points = {p.name: p.workload for p in reference_points()}
    pairs = [(points[t.start], points[t.target]) for t in TRANSFERS if t.start in points and t.target in points]
    return frozenset(name for a, b in pairs for name in changed_fields(a, b))


def gpu_label(spec: GpuSpec) -> str:
    """`an H200`, `a B200`: the GPU as a sentence names it."""
    name = spec.name.upper()
    return f"{'an' if name[0] in 'AEFHILMNORSX' else 'a'} {name}"


def _measured(spec: GpuSpec, w: Workload, same: Sequence[CalibrationPoint]) -> Sourced:
    """Step 1: the median of the measurements at this configuration; the band their spread or the run's p10-p90."""
    rates = [p.tokens_per_sec for p in same]
    rate = statistics.median(rates)
    low: float | None
    high: float | None
    if len(same) > 1:
        low = min(p.tokens_per_sec_p10 or p.tokens_per_sec for p in same)
        high = max(p.tokens_per_sec_p90 or p.tokens_per_sec for p in same)
        basis, who = f"the {len(same)} measurements' spread", f"(median of {len(same)}) " + ", ".join(map(provenance, same))
    else:
        low, high = same[0].tokens_per_sec_p10, same[0].tokens_per_sec_p90
        basis, who = "the run's p10–p90 steps", provenance(same[0])
    if low is None or high is None:  # one figure with no spread of its own (a single step, an average)
        low, high = (rate * f for f in factors(transfer_width(False)))
        basis = "no spread recorded with the figure: the band of a carried estimate (the worst held-out transfer)"
    label = f"measured on {gpu_label(spec)} {who}"
    return Sourced("measured", rate, low, high, label, basis, point_name(same[0]), tuple(p.name for p in same), 0.0, "")


def _carried(spec: GpuSpec, w: Workload, others: Sequence[CalibrationPoint], specs_path: str | Path | None) -> Sourced:
    """Step 2: the measurement on this GPU whose configuration the model moves least, carried by the model's ratio."""

    def moved(p: CalibrationPoint) -> float:
        return carried(p.tokens_per_sec, p.workload, w, spec.name, EFFICIENCIES, specs_path)

    start = min(others, key=lambda p: (abs(math.log(moved(p) / p.tokens_per_sec)), single_step(p)))
    rate, crosses = moved(start), aligned(start.workload) != aligned(w)
    unchecked = sorted(changed_fields(w, start.workload) - checked_fields())
    # A change no held-out transfer covers (another model shape, precision, sequence...) is trusted no more than the
    # bare model on a GPU nobody measured.
    width = max(transfer_width(crosses), gpu_width()) if unchecked else transfer_width(crosses)
    low, high = (rate * f for f in factors(width))
    changed = "; ".join(differences(w, start.workload))
    label = (
        f"carried from a measurement on {gpu_label(spec)} {provenance(start)} at {changed}, by the model's ratio"
        f" x{rate / start.tokens_per_sec:.2f}"
    )
    basis = f"x{math.exp(-width):.2f} to x{math.exp(width):.2f}, the worst held-out transfer between configurations on one GPU"
    basis += " across the vocabulary's alignment" if crosses else ""
    if unchecked:
        basis = (
            f"x{math.exp(-width):.2f} to x{math.exp(width):.2f}, as for a GPU nobody measured: no held-out transfer changed"
            f" {', '.join(unchecked)}"
        )
    notes = (UNALIGNED,) if crosses else ()
    return Sourced("carried", rate, low, high, label, basis, point_name(start), (start.name,), 0.0, "", notes)


def _projected(spec: GpuSpec, w: Workload, measured_gpus: set[str], specs_path: str | Path | None) -> Sourced:
    """Step 3: the roofline, its band from GPUs held out whole, doubled where no GPU of the architecture was measured."""
    rate = project(w, spec).tokens_per_sec
    known = [*gpu_specs(), *(gpu_specs(specs_path) if specs_path else [])]  # the reference set names gpus.csv's GPUs
    architectures = {s.architecture for s in known if s.name in measured_gpus and s.architecture}
    relative = bool(spec.architecture) and spec.architecture in architectures
    width = gpu_width() * (1 if relative else 2)
    low, high = (rate * f for f in factors(width))
    notes: tuple[str, ...] = ()
    if not aligned(w):  # the fast end moves out by what a fit without that one source would say, on top of the band
        high *= project(w, spec, replace(EFFICIENCIES, unaligned=1.0)).tokens_per_sec / rate
        notes = (UNALIGNED,)
    band = f"x{math.exp(-gpu_width()):.2f} to x{math.exp(gpu_width()):.2f}"
    held = f"{band}, the worst of every measured GPU held out with its sources"
    if relative:
        label, basis = f"projected: nothing measured on {spec.name}; {spec.architecture} GPUs were", held
    else:
        label = f"projected: no GPU of {spec.name}'s architecture ({spec.architecture or 'unknown'}) was measured"
        basis = f"twice {band} in log terms: an allowance for an architecture nobody here measured"
    return Sourced("projected", rate, low, high, label, basis, f"projection for {spec.name}", (), 0.0, "", notes)


def memory_for(w: Workload, points: Sequence[CalibrationPoint]) -> tuple[float, str]:
    """One rank's peak memory: a reserved figure measured at this configuration in `points` (the asked GPU's: what
    another GPU reserved is not this one's measurement) plus the context, else the memory model's estimate."""
    model = memory_breakdown(w)
    same = [p for p in points if p.reserved_gb and p.gpus == 1 and w.world_size == 1 and not differences(w, p.workload)]
    if same:
        reserved = statistics.median(p.reserved_gb or 0.0 for p in same)
        how = f"measured: {reserved:,.2f} GB reserved in {point_name(same[0])}, + {model.context_gb:g} GB CUDA context"
        return reserved + model.context_gb, how
    return model.total_gb, "estimated by the memory model"


def estimate_for(
    spec: GpuSpec, w: Workload, extra: Sequence[CalibrationPoint] = (), specs_path: str | Path | None = None
) -> Sourced:
    """The first answer the order finds for `w` on one `spec` GPU, from the reference set and `extra` points
    (a reports folder's runs)."""
    names = {p.name for p in extra}
    points = [*extra, *(p for p in reference_points() if p.name not in names)]
    on_gpu = one_gpu(points, spec.name)
    same = [p for p in on_gpu if not differences(w, p.workload)]
    if same:
        found = _measured(spec, w, same)
    elif on_gpu:
        found = _carried(spec, w, on_gpu, specs_path)
    else:
        found = _projected(spec, w, {p.gpu for p in points}, specs_path)
    memory, basis = memory_for(w, on_gpu)
    return replace(found, memory_gb=memory, memory_basis=basis)
