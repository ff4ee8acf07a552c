"""The summary a person reads after a run: throughput, MFU, memory, loss, telemetry, and warnings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from gptbench.cloud.estimate import FINEWEB_10B_TOKENS, hours_for
from gptbench.errors import GptbenchError
from gptbench.hardware.specs import match_device
from gptbench.predict.calibration import unmodelled_switches, workload_from_config
from gptbench.predict.reference import ReferenceCheck, check_against_reference
from gptbench.reports.schema import Report, Run, Telemetry
from gptbench.reports.text import fmt_gb, fmt_hours, fmt_rate, how_it_runs, short, switches


def run_warnings(run: Run) -> list[str]:
    """What a reader must know before trusting the numbers (a CPU's missing MFU is in the table, not here)."""
    r = run.result
    warnings = []
    if r.status == "interrupted":
        warnings.append(f"interrupted: {r.error}; its numbers cover those steps only, not a full measurement")
    elif r.status != "ok":
        warnings.append(f"run failed ({r.status}): {short(r.error, 300)}")
    elif not r.loss.all_finite:
        warnings.append("the loss was not finite (NaN/inf) at some step: the numbers time a diverged run")
    if r.status == "ok" and r.mfu is None and r.mfu_note and (run.config.device or "").startswith("cuda"):
        warnings.append(f"MFU n/a: {r.mfu_note}")
    if r.status == "ok" and r.telemetry is not None and r.telemetry.throttled:
        warnings.append(throttle_warning(r.telemetry))
    if r.status == "ok" and r.contention is not None and r.contention.busy:
        warnings += [f"not a clean measurement: {w}" for w in r.contention.warnings]
    warnings += r.notes
    return warnings


def summary_table(report: Report, run: Run) -> Table:
    """The after-run summary: throughput, MFU, memory, loss, and a FineWeb-10B epoch at this speed."""
    r, accel = run.result, report.machine.accelerator
    table = Table(title=f"gptbench run · {accel.name or accel.kind}", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    if run.name:
        table.add_row("run", run.name)
    table.add_row("config", config_text(run))
    measured = r.status in ("ok", "interrupted")  # an interrupted run's numbers, labelled as such
    if measured and r.tokens_per_sec is not None and r.step_time_s is not None and r.flops_per_token is not None:
        table.add_row(
            "tokens/s",
            f"{fmt_rate(r.tokens_per_sec)} median (p10–p90 {r.tokens_per_sec_p10:,.0f}–{r.tokens_per_sec_p90:,.0f})"
            f" over {len(r.step_times_s)} step{'s' if len(r.step_times_s) != 1 else ''}"
            + (" (INTERRUPTED: fewer than asked)" if r.status == "interrupted" else ""),
        )
        table.add_row("step time", f"{r.step_time_s * 1000:,.1f} ms median · warm-up {r.warmup_s:.1f} s (timed apart)")
        mfu = f"{r.mfu:.1%} of {r.peak_tflops:g} TFLOP/s (datasheet)" if r.mfu is not None else f"n/a ({r.mfu_note})"
        if r.mfu_measured is not None:
            mfu += f" · {r.mfu_measured:.1%} of achievable ({r.measured_peak_tflops:,.3g}, gptbench peak)"
        table.add_row("MFU", mfu)
        table.add_row("achieved", f"{r.achieved_tflops:,.2f} TFLOP/s · {r.flops_per_token / 1e6:,.0f} MFLOP/token")
        for name, text in rank_rows(run):
            table.add_row(name, text)
    m = r.memory
    if m.peak_allocated_gb is not None:
        table.add_row(
            "peak memory",
            f"{fmt_gb(m.peak_allocated_gb)} allocated · {fmt_gb(m.peak_reserved_gb)} reserved"
            f" · {fmt_gb(m.device_used_gb)} in use on the device (NVML)",
        )
    else:
        table.add_row("peak memory", f"{fmt_gb(m.host_peak_rss_gb)} process RSS (host)")
    if r.loss.first is not None or not r.loss.all_finite:
        table.add_row(
            "loss", f"{_loss(r.loss.first)} → {_loss(r.loss.last)}" + ("" if r.loss.all_finite else " (non-finite values seen)")
        )
    if r.data_wait_fraction is not None and run.config.data != "synthetic":
        table.add_row("data wait", f"{r.data_wait_fraction:.1%} of step time")
    for name, text in telemetry_rows(run):
        table.add_row(name, text)
    if runtime := runtime_text(report, run):
        table.add_row("host runtime", runtime)
    if (check := reference_check(report, run)) is not None:
        table.add_row("reference", check.line)  # "is this normal?"
    if r.status == "ok" and r.tokens_per_sec:
        table.add_row(
            "FineWeb-10B", f"one epoch (10e9 tokens) at this speed: {fmt_hours(hours_for(FINEWEB_10B_TOKENS, r.tokens_per_sec))}"
        )
    return table


def reference_check(report: Report, run: Run) -> ReferenceCheck | None:
    """An ok run beside the reference measurement of its GPU and configuration (or why there is none)."""
    r, accel = run.result, report.machine.accelerator
    if r.status != "ok" or not r.tokens_per_sec:
        return None
    spec = match_device(accel.name or "") if accel.kind == "cuda" else None
    device = accel.name or report.machine.cpu.model or accel.kind
    if spec and (unmodelled := unmodelled_switches(run.config)):  # the references all ran the plain trainer
        why = f"no reference with {', '.join(unmodelled)} (the reference runs use the standard trainer)"
        return ReferenceCheck(device, r.tokens_per_sec / run.config.world_size, why_none=why)
    try:
        w = workload_from_config(run.config) if spec else None
    except GptbenchError:  # a configuration the step model does not describe (a user's model): no reference to match
        w = None
    return check_against_reference(device, spec.name if spec else None, w, r.tokens_per_sec / run.config.world_size)


def run_json(report: Report, run: Run) -> dict[str, Any]:
    """`gptbench run --json`: the report, and "reference": how its run compares with the reference set."""
    check = reference_check(report, run)
    return {**report.to_dict(), "reference": check.to_dict() if check else None}


def config_text(run: Run) -> str:
    """The configuration in short lines: the model, the shape of a step, how it runs, and its memory switches."""
    c = run.config
    ranks = f" × {c.world_size} ranks" if c.world_size > 1 else ""
    lines = [
        f"{c.model.preset} ({c.model.n_params / 1e6:,.1f}M params, vocab {c.model.vocab_size})",
        f"seq {c.seq_len} × batch {c.micro_batch}{' (sized by GPU memory)' if c.micro_batch_basis else ''}"
        f" × accum {c.grad_accum}{ranks} · data {c.data}",
        " · ".join(how_it_runs(run)),
    ]
    return "\n".join(lines + ([" · ".join(switches(run))] if switches(run) else []))


def runtime_text(report: Report, run: Run) -> str | None:
    """`tcmalloc allocator · 2 intra-op threads (2 physical cores)`: what the host side ran on; None for old reports."""
    c, cpu = run.config, report.machine.cpu
    allocator = c.allocator or report.machine.allocator
    parts = [f"{allocator} allocator"] if allocator else []
    if c.threads is not None:
        cores = f" ({cpu.physical_cores} physical cores)" if cpu.physical_cores else ""
        parts.append(f"{c.threads} intra-op thread{'s' * (c.threads != 1)}{cores}")
    return " · ".join(parts) or None


def _loss(value: float | None) -> str:
    return "nan" if value is None else f"{value:.3f}"


def rank_rows(run: Run) -> list[tuple[str, str]]:
    """Summary rows of a multi-process run: tokens/s per GPU (per process on a CPU), scaling, memory by rank."""
    r, world, rows = run.result, run.config.world_size, []
    if world > 1 and r.tokens_per_sec_per_rank is not None:
        unit = "GPU" if (run.config.device or "").startswith("cuda") else "process"
        rows.append((f"per {unit}", f"{fmt_rate(r.tokens_per_sec_per_rank)} (the global tokens/s ÷ {world} ranks)"))
    if r.scaling_efficiency is not None:
        rows.append(
            (
                "scaling",
                f"{r.scaling_efficiency:.1%} of linear: {world} × {fmt_rate(r.baseline_tokens_per_sec)},"
                f" the rate of 1 process ({short(r.baseline_source, 120)})",
            )
        )
    maybe = [m.peak_allocated_gb if m.peak_allocated_gb is not None else m.host_peak_rss_gb for m in r.rank_memory]
    peaks = [p for p in maybe if p is not None]
    if len(peaks) > 1 and len(peaks) == len(maybe):
        hi, lo = peaks.index(max(peaks)), peaks.index(min(peaks))
        kind = "allocated" if r.rank_memory[0].peak_allocated_gb is not None else "process RSS"
        rows.append(("memory by rank", f"{kind}: max {fmt_gb(peaks[hi])} (rank {hi}) · min {fmt_gb(peaks[lo])} (rank {lo})"))
    return rows


def _span(lo: float | None, hi: float | None, unit: str) -> str:
    return "n/a" if lo is None or hi is None else f"{lo:,.0f}{unit}" if lo == hi else f"{lo:,.0f}–{hi:,.0f}{unit}"


def telemetry_rows(run: Run) -> list[tuple[str, str]]:
    """Summary rows for what was sampled during the measured steps: power and J/token, clocks, the CPU."""
    t, rows = run.result.telemetry, list[tuple[str, str]]()
    if t is None or run.result.status != "ok":
        return rows
    if t.gpus or (run.config.device or "").startswith("cuda"):
        if t.power_avg_w is None:
            rows.append(("power", f"n/a ({short(t.unavailable.get('power_avg_w'), 120)})"))
        else:
            how = "NVML energy counter" if t.energy_source == "counter" else "integrated from power samples"
            peak = "" if t.power_max_w is None else f" · {t.power_max_w:,.0f} W max"
            per_token = "" if t.joules_per_token is None else f" · {t.joules_per_token:.3g} J/token"
            rows.append(("power", f"{t.power_avg_w:,.0f} W avg{peak}{per_token} ({how}, {t.gpus} GPU{'s' * (t.gpus > 1)})"))
        if t.gpus:
            busy = "" if t.utilization_gpu_avg is None else f" · {t.utilization_gpu_avg:.0%} busy"
            sm = _span(t.sm_clock_mhz_min, t.sm_clock_mhz_max, " MHz")
            mem = _span(t.mem_clock_mhz_min, t.mem_clock_mhz_max, " MHz")
            rows.append(("GPU", f"SM {sm} · memory {mem} · {_span(t.temperature_c_min, t.temperature_c_max, ' °C')}{busy}"))
    if t.cpu_freq_mhz_avg is not None or t.cpu_load_avg is not None:
        freq = "n/a" if t.cpu_freq_mhz_avg is None else f"{t.cpu_freq_mhz_avg:,.0f} MHz avg"
        load = "" if t.cpu_load_avg is None else f" · {t.cpu_load_avg:.0%} busy (all cores)"
        rows.append(("CPU", freq + load))
    return rows


def throttle_warning(t: Telemetry) -> str:
    """The warning for a run whose GPU clocks were held down by a reason that costs throughput."""
    share = "" if t.throttled_fraction is None else f" in {t.throttled_fraction:.0%} of the samples"
    if t.throttle_reasons == ["power cap"]:
        return (
            f"the GPU ran at its power limit{share} (NVML: power cap): the throughput is what it does at that limit;"
            " another card of the same model with a higher limit will be faster"
        )
    return (
        f"the GPU throttled{share} ({', '.join(t.throttle_reasons)}): clocks were cut by heat or the power supply, so this"
        " is not a fair measurement of the GPU; check its cooling and power, then measure again"
    )


def print_run_summary(console: Console, report: Report, run: Run, path: Path | None) -> None:
    """Print the summary table and any warnings under it."""
    console.print(summary_table(report, run))
    for warning in run_warnings(run):
        console.print(f"[yellow]warning:[/yellow] {warning}")
    if path is not None:
        console.print(f"report: {path}", soft_wrap=True, highlight=False)  # whole, so it can be copied
