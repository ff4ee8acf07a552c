"""Tables for the commands that measure many runs: batch search, sweep, ablation ladder, peak.
They build rich renderables; the CLI prints them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from gptbench.reports.schema import MeasuredPeak, Run
from gptbench.reports.text import fmt_gb, short

if TYPE_CHECKING:
    from gptbench.studies.autobatch import AutoBatch


def _peak_memory(run: Run) -> str:
    m = run.result.memory
    return fmt_gb(m.peak_allocated_gb if m.peak_allocated_gb is not None else m.host_peak_rss_gb)


def probes_table(found: AutoBatch) -> Table:
    """What the batch search tried: each probe, whether it fit, the memory it used against the prediction, its step."""
    title = f"batch search · bound {found.bound_gb:.2f} GB ({found.bound_source})"
    limits = found.limits
    if limits is not None and limits.data_limit_gb is not None:
        title += f" · each probe capped at {limits.data_limit_gb:.2f} GB (RLIMIT_DATA)"
    if limits is not None and limits.step_limit_s is not None:
        title += f" · stops growing past a {limits.step_limit_s:g} s step"
    table = Table(title=title, title_justify="left")
    for column in ("micro-batch", "fits", "memory used", "predicted", "step", "note"):
        table.add_column(column, justify="right" if column != "note" else "left")
    for p in found.probes:
        used = "not run" if not p.ran else "n/a" if p.peak_gb is None else f"{p.peak_gb:.2f} GB"
        predicted = "—" if p.predicted_gb is None else f"{p.predicted_gb:.2f} GB"
        step = "—" if p.step_time_s is None else f"{p.step_time_s:.2f} s"
        note = "" if p.fits and not p.slow else short(p.why, 160)
        table.add_row(str(p.micro_batch), "yes" if p.fits else "no", used, predicted, step, note)
    return table


def series_table(runs: list[Run], title: str, ladder: bool = False) -> Table:
    """One row per run: tokens/s, MFU, memory; a sweep marks its fastest, a ladder shows speedups rung to rung."""
    table = Table(title=title, title_justify="left")
    table.add_column("run" if not ladder else "rung")
    table.add_column("tokens/s", justify="right")
    if ladder:
        table.add_column("vs previous", justify="right")
        table.add_column("vs baseline", justify="right")
    table.add_column("MFU", justify="right")
    table.add_column("peak memory", justify="right")
    table.add_column("status")
    ok = [r.result.tokens_per_sec for r in runs if r.result.status == "ok" and r.result.tokens_per_sec]
    best = max(ok, default=None)
    base = runs[0].result.tokens_per_sec if runs and runs[0].result.status == "ok" else None
    previous = base
    for run in runs:
        r = run.result
        rate = r.tokens_per_sec if r.status == "ok" else None
        row = [run.name or "", f"{rate:,.0f}" if rate else "—"]
        if ladder:
            row += [_ratio(rate, previous), _ratio(rate, base)]
        row += [f"{r.mfu:.1%}" if r.mfu is not None else "n/a", _peak_memory(run) if r.status == "ok" else "—"]
        status = r.status if r.status == "ok" else f"{r.status}: {short(r.error)}"
        if rate is not None and rate == best and len(runs) > 1:
            status += " · fastest"
        table.add_row(*row, status, style="bold green" if rate is not None and rate == best and not ladder else None)
        if rate:
            previous = rate
    return table


def _ratio(rate: float | None, reference: float | None) -> str:
    return f"{rate / reference:.2f}x" if rate and reference else "—"


def peak_table(peak: MeasuredPeak, datasheet: dict[str, float] | None = None) -> Table:
    """Achieved matmul TFLOP/s per precision and shape, against the datasheet peak where known; then bandwidth."""
    table = Table(title=f"measured peak · {peak.device} · {peak.timing}", title_justify="left")
    for column in ("precision", "m×n×k", "TFLOP/s", "datasheet", "of datasheet", "repeats"):
        table.add_column(column, justify="right" if column != "precision" else "left")
    for m in peak.matmul:
        sheet = (datasheet or {}).get(m.dtype)
        table.add_row(
            m.dtype,
            f"{m.m}×{m.n}×{m.k}",
            f"{m.tflops:,.3g}",
            f"{sheet:g}" if sheet else "n/a",
            f"{m.tflops / sheet:.0%}" if sheet else "—",
            str(m.repeats),
        )
    if peak.bandwidth_gbs is not None:
        size = (peak.copy_bytes or 0) / 2**20
        table.add_row("copy", f"{size:,.0f} MiB", f"{peak.bandwidth_gbs:,.0f} GB/s", "", "", "")
    return table
