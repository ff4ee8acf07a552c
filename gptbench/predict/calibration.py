"""What the projection model is fitted on: published measurements (calibration.csv, each with its source and date)
and GPU reports in a folder, and the least-squares fit of its efficiencies to them."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

from gptbench.errors import GptbenchError
from gptbench.hardware.specs import GpuSpec, find_gpu, match_device
from gptbench.predict.projection import MEMORY_EFFICIENCY, Efficiencies, Op, op_time_s, peak_for_workload, project, weighted_ops
from gptbench.predict.workload import Workload, workload_of
from gptbench.reports.schema import RunConfig
from gptbench.reports.store import find_reports, load_report

PUBLISHED_FILE = Path(__file__).with_name("calibration.csv")

# The weight in the fit of a figure that is one timed step rather than a median over many (calibration.csv's `weight`
# column): the runpod-* rows are step 9 of a log, timed with time.time() around a step that also builds its batch on
# the CPU. One step carries its own noise (the two batch sizes logged per GPU, same tokens per step, differ by 0.3-4%)
# and a bias the model leaves out, and 12 such rows come from one script: at 0.5 they count as 6 points against the 7
# medians and averages of four other sources, so one log cannot outvote all the others together.
SINGLE_STEP_WEIGHT = 0.5


@dataclass(frozen=True)
class CalibrationPoint:
    """One measured training configuration: what ran, on which GPU(s), how fast, and who says so."""

    name: str
    gpu: str  # a gpus.csv name
    gpus: int
    workload: Workload  # per GPU
    tokens_per_sec: float  # measured, all GPUs together
    reserved_gb: float | None  # the allocator's reserved memory, where the source gives it (GB, 1e9 bytes)
    observed: str
    source: str
    notes: str = ""
    repository: str = ""  # owner/name on GitHub, with path and commit: where the figure can be read again
    path: str = ""
    commit: str = ""
    url: str = ""  # a document's address, where the figure is not in a repository file
    weight: float = 1.0  # in the fit: SINGLE_STEP_WEIGHT for a single timed step, else 1
    measured_by: str = ""  # who ran it: a person or project, or gptbench
    quality: str = ""  # what the figure is: a median of N steps, an average, a single step, an approximation
    tokens_per_sec_p10: float | None = None  # the run's slow and fast steps (all GPUs), where the source gives them
    tokens_per_sec_p90: float | None = None

    @property
    def source_group(self) -> str:
        """What leave-one-source-out holds out together: one repository, one document, or one gptbench report."""
        return self.repository or self.url or self.source

    @property
    def tokens_per_sec_per_gpu(self) -> float:
        """Per GPU, taking a multi-GPU figure as linear scaling (the notes say why that is fair, per point)."""
        return self.tokens_per_sec / self.gpus


def _flag(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "yes")


def _published(row: dict[str, str]) -> CalibrationPoint:
    shape = ("n_layer", "n_head", "n_embd", "vocab_size", "seq_len", "micro_batch", "grad_accum")
    ints: dict[str, Any] = {k: int(row[k]) for k in shape}
    workload = Workload(
        **ints,
        dtype=row["dtype"],
        weights=row["weights"],
        compile=_flag(row["compile"]),
        attention=row["attention"],
        adamw=row["adamw"],
        tied_head=_flag(row["tied_head"]),
        dropout=_flag(row["dropout"]),
        eval_forwards=float(row["eval_forwards"] or 0),
    )
    return CalibrationPoint(
        name=row["name"],
        gpu=row["gpu"],
        gpus=int(row["gpus"]),
        workload=workload,
        tokens_per_sec=float(row["tokens_per_sec"]),
        reserved_gb=float(row["reserved_gb"]) if row["reserved_gb"] else None,
        observed=row["observed"],
        source=row["source"],
        notes=row["notes"],
        repository=row["repository"],
        path=row["path"],
        commit=row["commit"],
        url=row["url"],
        weight=float(row["weight"] or 1),
        measured_by=row["measured_by"],
        quality=row["quality"],
    )


def published_points(path: str | Path = PUBLISHED_FILE) -> list[CalibrationPoint]:
    """The published measurements in calibration.csv, as calibration points."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return [_published(row) for row in csv.DictReader(f)]
    except OSError as e:
        raise GptbenchError(f"calibration table {path}: cannot read ({e.strerror})") from e
    except (KeyError, ValueError) as e:
        raise GptbenchError(f"calibration table {path}: malformed ({e})") from e


def workload_from_config(config: RunConfig) -> Workload:
    """The projection's view of a report's run configuration (per GPU)."""
    return workload_of(
        config.model,
        seq_len=config.seq_len,
        micro_batch=config.micro_batch,
        grad_accum=config.grad_accum,
        dtype=config.dtype,
        tf32=config.tf32,
        compile=config.compile,
        attention=config.attention,
        adamw=config.adamw_impl,
        tied_head=config.model.tie_head,  # the book's presets have an untied head and dropout (reports before: GPT-2's)
        dropout=config.model.dropout > 0,
        world_size=config.world_size,
        sharding=config.shard,
        activation_checkpointing=config.activation_checkpointing,
    )


# The book's chapter-5 loop (micro-batch 2 x 256 tokens, eager fp32, an evaluation every 5 steps) is bound by kernel
# launches and Python, which the roofline model leaves out by design: fitted on, it would drag the efficiencies that
# serve real GPT-2 runs (on the H200 it moved the unaligned-vocabulary factor from 0.33 to 0.27 alone).
CHAPTER5_NOT_FITTED = "the book's chapter-5 loop (batch 2, eager fp32) is launch-bound, outside what the roofline models"


def trainer_switches(config: RunConfig) -> list[tuple[str, object, object]]:
    """(name, the plain trainer's value, this run's) for each trainer switch the step model (Workload) does not
    describe: the model always prices the plain trainer's step."""
    compile_mode = config.compile_mode if config.compile else "default"
    return [("loss", "standard", config.loss), ("compile mode", "default", compile_mode), ("FP8", False, config.fp8)]


def unmodelled_switches(config: RunConfig) -> list[str]:
    """The trainer switches of `config` that the step model does not describe: a run with any of them is not a
    measurement of the configuration the model would match it to (a chunked loss or FP8 at batch 64 is not the
    plain step at batch 64), so it is neither a point nor a reference until the model learns them."""
    return [name if value is True else f"{name} {value}" for name, plain, value in trainer_switches(config) if value != plain]


def report_points(folder: str | Path) -> tuple[list[CalibrationPoint], list[str]]:
    """Every ok run of every GPU report in `folder` as a point, and a line for each report or run left out and why."""
    points, skipped = [], []
    for path in find_reports(folder):
        try:
            report = load_report(path)
        except GptbenchError as e:
            skipped.append(f"{path.name}: {e}")
            continue
        accel = report.machine.accelerator
        spec = match_device(accel.name or "") if accel.kind == "cuda" else None
        if spec is None:
            skipped.append(f"{path.name}: {accel.name or accel.kind} is not a GPU in the spec table, so it has no projection")
            continue
        for i, run in enumerate(report.runs):
            if run.result.status != "ok" or not run.result.tokens_per_sec:
                skipped.append(f"{path.name} run {i}: status {run.result.status}, no throughput")
                continue
            if run.result.chapter5 is not None:  # shown beside the projection, never fitted on
                skipped.append(f"{path.name} run {i}: {CHAPTER5_NOT_FITTED}")
                continue
            if unmodelled := unmodelled_switches(run.config):
                skipped.append(f"{path.name} run {i}: {', '.join(unmodelled)}: a switch the step model does not describe")
                continue
            memory, r = run.result.memory.peak_reserved_gb, run.result
            points.append(
                CalibrationPoint(
                    name=f"{path.name}#{i}",
                    gpu=spec.name,
                    gpus=run.config.world_size,
                    workload=workload_from_config(run.config),
                    tokens_per_sec=run.result.tokens_per_sec,
                    reserved_gb=memory,
                    observed=report.created[:10],
                    # One session on one machine is one source: leave-one-source-out holds its runs out together.
                    source=f"gptbench reports of {report.machine.hostname} ({accel.name}), {report.created[:10]}",
                    measured_by="gptbench",
                    quality=f"median of {len(r.step_times_s)} steps",
                    tokens_per_sec_p10=r.tokens_per_sec_p10,
                    tokens_per_sec_p90=r.tokens_per_sec_p90,
                )
            )
    return points, skipped


def projected_per_gpu(point: CalibrationPoint, eff: Efficiencies, specs_path: str | Path | None = None) -> float:
    """The model's tokens/s for one of the point's GPUs."""
    return project(point.workload, find_gpu(point.gpu, specs_path), eff).tokens_per_sec


Prepared = tuple[list[tuple[Op, float]], float, float, int, float, float]


def _prepared(points: Iterable[CalibrationPoint], specs_path: str | Path | None) -> list[Prepared]:
    """Per point: its weighted ops, peak, bandwidth, tokens per step, measured per-GPU rate and weight, computed once."""
    prepared = []
    for point in points:
        spec: GpuSpec = find_gpu(point.gpu, specs_path)
        peak, _ = peak_for_workload(point.workload, spec)
        ops = weighted_ops(point.workload)
        bw = spec.memory_bw_gbs or 0.0
        prepared.append((ops, peak, bw, point.workload.tokens_per_step, point.tokens_per_sec_per_gpu, point.weight))
    return prepared


def _loss(prepared: Sequence[Prepared], eff: Efficiencies) -> float:
    total = 0.0
    for ops, peak, bw, tokens, measured, weight in prepared:
        step_s = sum(runs * op_time_s(op, peak, bw, eff) for op, runs in ops)
        total += weight * math.log(tokens / step_s / measured) ** 2
    return total


def fit(points: Sequence[CalibrationPoint], specs_path: str | Path | None = None) -> Efficiencies:
    """The matmul efficiency (and, where some point's vocabulary is unaligned, the unaligned factor) that minimise
    the weighted squared log error over `points`, memory efficiency held at MEMORY_EFFICIENCY: a 0.05 grid, then 0.01."""
    if not points:
        raise GptbenchError("nothing to fit: no calibration points")
    prepared = _prepared(points, specs_path)
    identified = any(p.workload.vocab_size % 64 for p in points)  # else the unaligned factor leaves no trace

    def best(matmuls: Iterable[float], unaligneds: Iterable[float]) -> Efficiencies:
        candidates = [Efficiencies(m, MEMORY_EFFICIENCY, u) for m, u in product(matmuls, unaligneds)]
        return min(candidates, key=lambda eff: _loss(prepared, eff))

    def around(value: float) -> list[float]:
        return [v for v in (round(value + k / 100, 2) for k in range(-5, 6)) if 0 < v <= 1]

    coarse = best([k / 20 for k in range(2, 21)], [k / 20 for k in range(2, 21)] if identified else [1.0])
    return best(around(coarse.matmul), around(coarse.unaligned) if identified else [1.0])
