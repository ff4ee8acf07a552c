"""Rendering reports for people: the summary table after a run."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from gptbench.cloud.estimate import FINEWEB_10B_TOKENS, hours_for
from gptbench.reports.schema import Report, Run


def fmt_rate(tokens_per_sec: float | None) -> str:
    """12,345 tok/s, or n/a."""
    return "n/a" if tokens_per_sec is None else f"{tokens_per_sec:,.0f} tok/s"


def fmt_gb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} GB"


def fmt_hours(hours: float) -> str:
    """Hours, with days alongside when it runs past two days."""
    return f"{hours:,.1f} h" + (f" ({hours / 24:,.1f} days)" if hours >= 48 else "")


def describe_config(run: Run) -> str:
    """`124m · seq 1024 × batch 16 × accum 1 · bf16 · compile · sdpa · fused AdamW` in one line."""
    c = run.config
    parts = [
        f"{c.model.preset} ({c.model.n_params / 1e6:,.1f}M params, vocab {c.model.vocab_size})",
        f"seq {c.seq_len} × batch {c.micro_batch} × accum {c.grad_accum}"
        + (f" × {c.world_size} ranks" if c.world_size > 1 else ""),
        c.dtype + (" + tf32" if c.tf32 else ""),
        "compiled" if c.compile else "eager",
        c.attention,
        f"{c.adamw or ('fused' if c.fused_adamw else 'foreach')} AdamW",
        f"data {c.data}",
    ]
    return " · ".join(parts)


def run_warnings(run: Run) -> list[str]:
    """What a reader must know before trusting the numbers (a CPU's missing MFU is in the table, not here)."""
    r = run.result
    warnings = []
    if r.status != "ok":
        warnings.append(f"run failed ({r.status}): {r.error}")
    elif not r.loss.all_finite:
        warnings.append("the loss was not finite (NaN/inf) at some step: the numbers time a diverged run")
    if r.status == "ok" and r.mfu is None and r.mfu_note and (run.config.device or "").startswith("cuda"):
        warnings.append(f"MFU n/a: {r.mfu_note}")
    return warnings


def summary_table(report: Report, run: Run) -> Table:
    """The after-run summary: throughput, MFU, memory, loss, and a FineWeb-10B epoch at this speed."""
    r, accel = run.result, report.machine.accelerator
    table = Table(title=f"gptbench run · {accel.name or accel.kind}", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("config", describe_config(run))
    if r.status == "ok" and r.tokens_per_sec is not None:
        table.add_row(
            "tokens/s",
            f"{fmt_rate(r.tokens_per_sec)} median (p10–p90 {r.tokens_per_sec_p10:,.0f}–{r.tokens_per_sec_p90:,.0f})"
            f" over {len(r.step_times_s)} steps",
        )
        table.add_row("step time", f"{r.step_time_s * 1000:,.1f} ms median · warm-up {r.warmup_s:.1f} s (timed apart)")
        mfu = f"{r.mfu:.1%} of {r.peak_tflops:g} TFLOP/s peak" if r.mfu is not None else f"n/a ({r.mfu_note})"
        table.add_row("MFU", mfu)
        table.add_row("achieved", f"{r.achieved_tflops:,.2f} TFLOP/s · {r.flops_per_token / 1e6:,.0f} MFLOP/token")
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
    if r.status == "ok" and r.tokens_per_sec:
        table.add_row(
            "FineWeb-10B", f"one epoch (10e9 tokens) at this speed: {fmt_hours(hours_for(FINEWEB_10B_TOKENS, r.tokens_per_sec))}"
        )
    return table


def _loss(value: float | None) -> str:
    return "nan" if value is None else f"{value:.3f}"


def print_run_summary(console: Console, report: Report, run: Run, path: Path | None) -> None:
    """Print the summary table and any warnings under it."""
    console.print(summary_table(report, run))
    for warning in run_warnings(run):
        console.print(f"[yellow]warning:[/yellow] {warning}")
    if path is not None:
        console.print(f"report: {path}", soft_wrap=True, highlight=False)  # whole, so it can be copied
