"""Where an estimate's tokens/s comes from: a run in a report, a measured run on the same GPU and configuration,
or the projection model; and the catalog view that prices every offer. Never imports torch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gptbench.cloud.estimate import Estimate, RunPlan, Throughput, estimate
from gptbench.cloud.prices import Offer, current_offers
from gptbench.errors import GptbenchError
from gptbench.hardware.specs import GpuSpec, find_gpu, match_device
from gptbench.model.config import GPTConfig
from gptbench.predict.calibration import report_points, trainer_switches
from gptbench.predict.order import Sourced, estimate_for
from gptbench.predict.projection import EFFICIENCIES
from gptbench.predict.reference import fitted_on
from gptbench.predict.scaling import scaling_model_line
from gptbench.predict.workload import Workload, memory_estimate_gb, workload_of
from gptbench.reports.schema import Report, Run
from gptbench.reports.store import find_reports, load_report, scan_reports
from gptbench.reports.text import describe_config


def workload_for(
    model: str, seq: int | None, batch: int, dtype: str, compile: bool, attention: str, grad_accum: int = 1
) -> Workload:
    """gptbench's own CUDA step for a preset (fp32 master weights, fused AdamW; the vocabulary padded to 50304 as `run`
    pads it by default, which the book-* presets do not)."""
    if batch <= 0:
        raise GptbenchError(f"--batch must be a positive whole number, got {batch}")
    if dtype not in ("bf16", "fp16", "fp32") or attention not in ("sdpa", "naive"):
        raise GptbenchError(f"--dtype {dtype} --attention {attention}: choose bf16, fp16 or fp32, and sdpa or naive")
    if seq is not None and seq <= 0:
        raise GptbenchError(f"--seq must be a positive whole number, got {seq}")
    shape = GPTConfig.from_name(model)
    shape = shape.padded() if shape.pads_by_default else shape
    if seq is not None and seq > shape.block_size:
        raise GptbenchError(
            f"--seq {seq} is longer than the model's {shape.block_size} positions; use --seq {shape.block_size} or less"
        )
    step = {"seq_len": seq or shape.block_size, "micro_batch": batch, "grad_accum": grad_accum, "dtype": dtype}
    book = {"tied_head": shape.tie_head, "dropout": shape.dropout > 0}  # the book's untied head and dropout masks
    return workload_of(shape, **step, compile=compile, attention=attention, **book)


def describe_workload(w: Workload) -> str:
    """`12 layers × 768 wide · seq 1024 × batch 16 · bf16 · compiled · sdpa · fused AdamW` in one line."""
    return (
        f"{w.n_layer} layers × {w.n_embd} wide ({w.n_params / 1e6:,.1f}M params) · seq {w.seq_len} × batch {w.micro_batch}"
        f" × accum {w.grad_accum} · {w.dtype} · {'compiled' if w.compile else 'eager'} · {w.attention} · {w.adamw} AdamW"
        + (f" · {w.sharding}-sharded over {w.world_size}" if w.sharding != "none" else "")
        + (" · blocks recomputed" if w.activation_checkpointing else "")
    )


def _load_with_raw(path: Path) -> tuple[Report, dict[str, Any]]:
    """The validated report, and its raw JSON for fields this schema version does not model yet (telemetry)."""
    report = load_report(path)
    return report, json.loads(path.read_text(encoding="utf-8"))


def _raw_run(raw: dict[str, Any], index: int) -> dict[str, Any]:
    """Run `index` of a report's raw JSON, or {} where the file has no such run object."""
    runs = raw.get("runs")
    run = runs[index] if isinstance(runs, list) and index < len(runs) else None
    return run if isinstance(run, dict) else {}


def _raw_result(raw: dict[str, Any], index: int) -> dict[str, Any]:
    result = _raw_run(raw, index).get("result")
    return result if isinstance(result, dict) else {}


def _positive(value: object, upper: float | None = None) -> float | None:  # a raw JSON value, checked here
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    return float(value) if value > 0 and (upper is None or value <= upper) else None


def from_run(path: Path, report: Report, raw: dict[str, Any], index: int, specs_path: str | Path | None = None) -> Throughput:
    """Run `index` of a report as a measured throughput, with its p10/p90, and its power and scaling when recorded."""
    run, accel = report.runs[index], report.machine.accelerator
    spec = match_device(accel.name or "", specs_path) if accel.kind == "cuda" else None
    extra = _raw_result(raw, index)
    telemetry = extra.get("telemetry")  # added by a later schema revision: read defensively
    power = _positive(telemetry.get("power_avg_w")) if isinstance(telemetry, dict) else None
    sampled = _positive(telemetry.get("gpus")) if isinstance(telemetry, dict) else None
    if power is not None and sampled is not None and sampled < run.config.world_size:
        power *= run.config.world_size / sampled  # a multi-process run samples rank 0's GPU alone: scale to all ranks
    return Throughput(
        tokens_per_sec=run.result.tokens_per_sec or 0.0,
        basis="measured",
        source=f"{path} run {index}",
        gpus=run.config.world_size,
        config=f"{accel.name or accel.kind} · {describe_config(run)}",
        gpu=spec.name if spec else None,
        tokens_per_sec_p10=run.result.tokens_per_sec_p10,
        tokens_per_sec_p90=run.result.tokens_per_sec_p90,
        power_w=power,
        scaling_efficiency=_positive(extra.get("scaling_efficiency"), upper=1.0),
        device="GPU" if accel.kind == "cuda" else accel.kind.upper(),
    )


def pick_run(path: str | Path, run_index: int | None = None) -> tuple[Report, dict[str, Any], int]:
    """A report, its raw JSON, and which run to use: `run_index`, else the fastest ok run."""
    path = Path(path)
    report, raw = _load_with_raw(path)
    if not report.runs:
        raise GptbenchError(f"{path}: the report has no runs")
    if run_index is not None:
        if not 0 <= run_index < len(report.runs):
            raise GptbenchError(f"--run {run_index}: {path} has runs 0..{len(report.runs) - 1}")
        chosen = report.runs[run_index]
        if chosen.result.status != "ok" or not chosen.result.tokens_per_sec:
            raise GptbenchError(f"--run {run_index} of {path} ended with status {chosen.result.status}; pick an ok run")
        return report, raw, run_index
    ok = [i for i, run in enumerate(report.runs) if run.result.status == "ok" and run.result.tokens_per_sec]
    if not ok:
        statuses = ", ".join(sorted({run.result.status for run in report.runs}))
        raise GptbenchError(f"{path}: no run finished ok (status {statuses}); nothing to estimate from")
    return report, raw, max(ok, key=lambda i: report.runs[i].result.tokens_per_sec or 0.0)


def from_report(
    path: str | Path, run_index: int | None = None, specs_path: str | Path | None = None
) -> tuple[Throughput, float | None]:
    """A report's best ok run (or run `run_index`) and the board power of its GPU (None when unknown)."""
    report, raw, index = pick_run(path, run_index)
    throughput = from_run(Path(path), report, raw, index, specs_path)
    spec = find_gpu(throughput.gpu, specs_path) if throughput.gpu else None
    return throughput, spec.board_power_w if spec else None


def newest_report(folder: str | Path) -> Path:
    """The most recently written report in `folder` that this gptbench reads (see `scan_reports`), or an error saying
    how to get one."""
    found = scan_reports(folder)[0]
    if not found:
        raise GptbenchError(
            f"no report in {folder}/: run `gptbench run` first, or pass --report FILE, --tokens-per-sec N or --gpu NAME"
        )
    return found[-1]


def config_differences(w: Workload, run: Run, raw_run: dict[str, Any]) -> list[str]:
    """What in a measured run differs from the asked configuration, among what changes speed; empty when it matches."""
    c, m = run.config, run.config.model
    model = raw_run.get("config", {}).get("model", {}) if isinstance(raw_run.get("config"), dict) else {}
    tied = model.get("tie_head", True) if isinstance(model, dict) else True  # absent: GPT-2's tied head
    pairs = [
        ("shape", f"{w.n_layer}x{w.n_head}x{w.n_embd}", f"{m.n_layer}x{m.n_head}x{m.n_embd}"),
        ("seq", w.seq_len, c.seq_len),
        ("batch", w.micro_batch, c.micro_batch),
        ("dtype", w.dtype, c.dtype),
        ("compile", w.compile, c.compile),
        ("attention", w.attention, c.attention),
        ("vocabulary", w.vocab_size, m.vocab_size),
        ("tied head", w.tied_head, bool(tied)),
        ("activation checkpointing", w.activation_checkpointing, c.activation_checkpointing),  # recompute costs time
        ("sharding", w.sharding, c.shard),  # ZeRO-1 and FSDP2 add communication
        # The workload is always the plain trainer's: a run with the frontier's switches is not its measurement.
        *trainer_switches(c),
    ]
    return [f"{name} {theirs} (asked {ours})" for name, ours, theirs in pairs if ours != theirs]


def _runs_on(
    spec: GpuSpec, folder: str | Path, specs_path: str | Path | None
) -> Iterator[tuple[Path, Report, dict[str, Any], int]]:
    """Every ok run in `folder` measured on this GPU: (path, report, raw JSON, run index)."""
    for path in find_reports(folder):
        try:
            report, raw = _load_with_raw(path)
        except (GptbenchError, ValueError):
            continue  # an unreadable file is not a measurement; `gptbench compare` reports such files
        accel = report.machine.accelerator
        matched = match_device(accel.name, specs_path) if accel.kind == "cuda" and accel.name else None
        if matched is None or matched.name != spec.name:
            continue
        for i, run in enumerate(report.runs):
            if run.result.status == "ok" and run.result.tokens_per_sec:
                yield path, report, raw, i


def measured_on(
    spec: GpuSpec, w: Workload, folder: str | Path, specs_path: str | Path | None = None
) -> tuple[Throughput | None, str | None]:
    """The fastest run (per GPU) in `folder` on this GPU with the asked configuration (shape, seq, batch, dtype,
    compile, attention, vocabulary, tied head); else None and a line naming the nearest other run and how it differs."""
    best: tuple[float, Throughput] | None = None
    nearest: tuple[int, str] | None = None
    for path, report, raw, i in _runs_on(spec, folder, specs_path):
        run = report.runs[i]
        rate = (run.result.tokens_per_sec or 0.0) / run.config.world_size
        differences = config_differences(w, run, _raw_run(raw, i))
        if not differences and (best is None or rate > best[0]):
            best = (rate, from_run(path, report, raw, i, specs_path))
        elif differences and (nearest is None or len(differences) < nearest[0]):
            line = f"measured, different configuration: {rate:,.0f} tok/s per GPU in {path} run {i} ({'; '.join(differences)})"
            nearest = (len(differences), line)
    return (best[1] if best else None), (None if best or nearest is None else nearest[1])


def precision_for(spec: GpuSpec, w: Workload) -> tuple[Workload, str | None]:
    """The workload as `gptbench run` would run it on `spec`: fp16 where the GPU has no bf16 (and a note saying so)."""
    if w.dtype == "bf16" and spec.bf16_tflops is None and spec.fp16_tflops is not None:
        return replace(w, dtype="fp16"), f"{spec.name} has no bf16: projected in fp16, as `gptbench run` would choose"
    return w, None


def sourced(spec: GpuSpec, w: Workload, found: Sourced, notes: tuple[str, ...] = ()) -> Throughput:
    """The order's answer for one GPU (predict/order.py) as an estimate's throughput, its band as the range."""
    how = {
        "measured": f"a reference measurement ({found.source})",
        "carried": f"the reference measurement {found.source}, carried to this configuration by the model's ratio",
        "projected": f"gptbench's roofline model: matmuls at {EFFICIENCIES.matmul:.0%} of the dense peak, memory traffic at"
        f" {EFFICIENCIES.memory:.0%} of datasheet bandwidth, fitted on {fitted_on()}",
    }[found.step]
    return Throughput(
        tokens_per_sec=found.tokens_per_sec,
        tokens_per_sec_p10=found.low,
        tokens_per_sec_p90=found.high,
        range_basis="p90–p10 speed" if found.band_basis.startswith("the run's p10") else "held-out band",
        evidence=found.label,
        basis=found.step,
        source=found.source if found.step != "projected" else f"projection for {spec.name} ({spec.source_date} datasheet)",
        gpus=1,
        config=describe_workload(w),
        gpu=spec.name,
        memory_gb=found.memory_gb,
        memory_capacity_gb=spec.memory_gb,
        memory_measured=found.memory_basis.startswith("measured"),
        notes=(*notes, f"from {how}; range: {found.band_basis}", f"memory: {found.memory_basis}", *found.notes),
    )


def for_gpu(spec: GpuSpec, w: Workload, folder: str | Path, specs_path: str | Path | None = None) -> Throughput:
    """The first answer in the order of predict/order.py: a run of yours in `folder` on this GPU and configuration,
    else a reference measurement of it, else the nearest measurement on this GPU carried across, else the
    projection; fp16 stands in for bf16 on GPUs without bf16, as `run` does."""
    w, note = precision_for(spec, w)
    mine, _ = measured_on(spec, w, folder, specs_path)
    if mine is not None:  # it ran, at its own batch; whether the requested batch fits is still the estimate's call
        evidence = f"measured on {spec.name} in {mine.source}, a report in {folder}"
        return replace(mine, memory_gb=memory_estimate_gb(w), memory_capacity_gb=spec.memory_gb, evidence=evidence)
    found = estimate_for(spec, w, report_points(folder)[0], specs_path)
    return sourced(spec, w, found, (note,) if note else ())


@dataclass(frozen=True)
class OfferEstimate:
    """One catalog offer priced for the run, or why it could not be."""

    offer: Offer
    estimate: Estimate | None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """One catalog row as JSON-ready data: the offer, then its price for the run or the problem."""
        offer, e = self.offer.to_dict(), self.estimate
        if e is None:
            return {**offer, "basis": None, "problem": self.problem}
        return {
            **offer,
            "basis": e.throughput.basis,
            "tokens_per_sec": e.tokens_per_sec,
            "scaling_efficiency": e.scaling_efficiency,
            "hours": e.hours,
            "hours_range": list(e.hours_range) if e.hours_range else None,
            "cost_usd": e.cost_usd,
            "cost_range_usd": list(e.cost_range_usd) if e.cost_range_usd else None,
            "evidence": e.throughput.evidence,
            "fits": e.throughput.fits,
            "memory_estimate_gb": e.throughput.memory_gb,
            "throughput": e.throughput.to_dict(),
        }


@dataclass(frozen=True)
class Catalog:
    """Every current offer priced for the run, cheapest first, and the assumptions behind every row."""

    rows: list[OfferEstimate]
    assumptions: list[str]

    def to_dict(self) -> dict[str, Any]:
        """`gptbench estimate --catalog --json`."""
        return {"offers": [r.to_dict() for r in self.rows], "assumptions": self.assumptions}


def catalog_view(
    plan: RunPlan, w: Workload, folder: str | Path, catalog_file: str | Path | None = None, specs_file: str | Path | None = None
) -> Catalog:
    """Every current offer (newest observation of each), priced for `plan`, cheapest first; and the assumptions."""
    offers, superseded = current_offers(catalog_file)
    if plan.gpus is not None:
        offers = tuple(o for o in offers if o.gpus == plan.gpus)
    rates: dict[str, Throughput | str] = {}
    rows = []
    for offer in offers:
        if offer.gpu not in rates:
            try:
                rates[offer.gpu] = for_gpu(find_gpu(offer.gpu, specs_file), w, folder, specs_file)
            except GptbenchError as e:
                rates[offer.gpu] = str(e)
        rate = rates[offer.gpu]
        if isinstance(rate, str):
            rows.append(OfferEstimate(offer, None, rate))
            continue
        priced = replace(plan, gpus=offer.gpus, price_usd=offer.price_per_hour_usd, price_per="instance", kwh_price_usd=None)
        rows.append(OfferEstimate(offer, estimate(priced, rate, workload=w)))
    rows.sort(key=lambda r: (r.estimate is None, r.estimate.cost_usd if r.estimate else 0.0))
    return Catalog(rows, catalog_assumptions(plan, w, rows, superseded))


def catalog_assumptions(plan: RunPlan, w: Workload, rows: list[OfferEstimate], superseded: tuple[Offer, ...]) -> list[str]:
    """The lines under the catalog table: what was assumed for every row."""
    eff = plan.scaling_efficiency or None
    lines = [
        f"tokens: {plan.tokens:,.0f}" + (f" ({plan.tokens_how})" if plan.tokens_how else ""),
        f"configuration: {describe_workload(w)} (gptbench's CUDA defaults unless --batch/--dtype/--seq say otherwise)",
        "measured: a run in the reports folder or the reference set (published measurements and gptbench's reference"
        " runs) on that GPU with this configuration (shape, seq, batch, dtype, compile, attention, vocabulary, tied head,"
        " sharding, checkpointing); carried: the nearest measurement on that GPU, moved to this configuration by the"
        " model's ratio; projected: gptbench's roofline model, nothing measured on that GPU (docs/methodology.md)",
        "time and cost ranges: measured p90-p10 steps; carried and projected: the worst held-out error of that kind"
        " (predict/holdout.py; --json says which, per row)",
        f"multi-GPU instances: scaling efficiency {eff or 'as measured, else the scaling model: ' + scaling_model_line()}",
        "memory fit: a reserved figure measured at this configuration plus the CUDA context, else the memory model (weights,"
        " AdamW state, activations at this batch, the CUDA context), against the datasheet memory",
        "prices: on-demand $/hour for the whole instance as observed on the date shown (marketplace rows: a median listing;"
        " a row that is not one observed listing says so in its notes, --json); they change, so check the provider;"
        " update with --catalog-file or $GPTBENCH_PRICES_FILE",
    ]
    if plan.overhead:
        lines.append(f"overhead: +{plan.overhead:.0%} time for evaluation, checkpoints and restarts")
    if superseded:
        lines.append(
            f"{len(superseded)} older price observation(s) superseded by newer ones for the same instance (kept in the file "
            "for history), e.g. "
            + ", ".join(f"{o.provider} {o.instance} ${o.price_per_hour_usd:g} on {o.observed}" for o in superseded[:2])
        )
    return lines
