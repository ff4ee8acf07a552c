"""`gptbench estimate`: hours and dollars for a whole training run, from a report, a given speed, or a projection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from gptbench.cli.common import DECIDE, app, friendly, out
from gptbench.cloud.breakdown import Breakdown, explain_gpu, explain_report
from gptbench.cloud.estimate import Estimate, RunPlan, Throughput, estimate
from gptbench.cloud.throughput import Catalog, catalog_view, for_gpu, from_report, newest_report, workload_for
from gptbench.cloud.tokens import parse_tokens
from gptbench.errors import GptbenchError
from gptbench.hardware.specs import find_gpu
from gptbench.model.config import GPTConfig, count_params
from gptbench.predict.workload import Workload


@app.command(name="estimate", rich_help_panel=DECIDE)
@friendly
def estimate_command(
    tokens: Annotated[str, typer.Option(help="10e9, 2.5B, 300M, fineweb-10b, or chinchilla (20 × the --model's parameters).")] = (
        "fineweb-10b"
    ),
    epochs: Annotated[float, typer.Option(help="Passes over --tokens.")] = 1.0,
    tokens_per_sec: Annotated[Optional[float], typer.Option(help="Use this throughput (global) instead of a report.")] = None,
    report: Annotated[Optional[Path], typer.Option(help="A report file: its fastest ok run, or --run N.")] = None,
    run: Annotated[Optional[int], typer.Option("--run", help="Which run of the report (0 = the first).")] = None,
    reports_dir: Annotated[Path, typer.Option(help="Where to look for the newest report and for measurements.")] = Path(
        "reports"
    ),
    gpu: Annotated[
        Optional[str], typer.Option(help="A GPU from the spec table: measured if a report has it, else projected.")
    ] = None,
    gpus: Annotated[Optional[int], typer.Option(help="GPUs for the run (default: as measured, or 1).")] = None,
    scaling_efficiency: Annotated[
        Optional[float], typer.Option(help="Multi-GPU efficiency in (0, 1] (default: measured, else 0.9, an assumption).")
    ] = None,
    price: Annotated[Optional[float], typer.Option(help="$/hour, per GPU or per instance (--price-per).")] = None,
    price_per: Annotated[str, typer.Option(help="gpu or instance: what --price is for.")] = "gpu",
    overhead: Annotated[float, typer.Option(help="Extra time for evaluation and checkpoints, as a fraction (0.1 = 10%).")] = 0.0,
    kwh_price: Annotated[
        Optional[float], typer.Option(help="Electricity price, $/kWh: adds the power bill of a local run.")
    ] = None,
    power_w: Annotated[
        Optional[float], typer.Option(help="Average power of the whole machine in watts (default: measured, else board power).")
    ] = None,
    model: Annotated[str, typer.Option(help="Preset for chinchilla and projections: tiny, 124m … 1558m, book-124m ….")] = "124m",
    seq: Annotated[Optional[int], typer.Option(help="Sequence length for projections (default: the model's block size).")] = None,
    batch: Annotated[int, typer.Option(help="Micro-batch size for projections and the memory-fit check.")] = 16,
    dtype: Annotated[str, typer.Option(help="bf16, fp16 or fp32 for projections.")] = "bf16",
    compile: Annotated[bool, typer.Option("--compile/--no-compile", help="Project a torch.compile'd step.")] = True,
    attention: Annotated[str, typer.Option(help="sdpa or naive, for projections.")] = "sdpa",
    shard: Annotated[
        str, typer.Option(help="none, optimizer (ZeRO-1) or full (FSDP2) over --gpus, for the memory-fit check.")
    ] = "none",
    activation_checkpointing: Annotated[
        bool, typer.Option("--activation-checkpointing", help="Project with each block recomputed in backward.")
    ] = False,
    catalog: Annotated[bool, typer.Option("--catalog", help="Price every offer in the catalog, cheapest first.")] = False,
    catalog_file: Annotated[Optional[Path], typer.Option(help="Your own price catalog (same columns as prices.csv).")] = None,
    specs_file: Annotated[Optional[Path], typer.Option(help="Your own GPU spec table (same columns as gpus.csv).")] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Where the step's time goes, per operation group (needs --gpu or a report).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of the table.")] = False,
) -> None:
    """Hours and dollars for a whole run: from a report, a given tokens/s, or projected for hardware you don't have."""
    total, how = parse_tokens(tokens, n_params=count_params(GPTConfig.from_name(model)), epochs=epochs)
    plan = RunPlan(total, how, gpus, scaling_efficiency, price, price_per, overhead, kwh_price, power_w)
    workload = with_switches(workload_for(model, seq, batch, dtype, compile, attention), gpus, shard, activation_checkpointing)
    if tokens_per_sec is not None and report is not None:
        raise GptbenchError("pass either --tokens-per-sec or --report, not both")
    if explain and (catalog or tokens_per_sec is not None):
        raise GptbenchError(
            "--explain breaks down one GPU's step: use it with --gpu NAME or a report, not --catalog/--tokens-per-sec"
        )
    if catalog:
        if tokens_per_sec is not None or report is not None:
            raise GptbenchError("--catalog prices every offer from measurements or projections; drop --tokens-per-sec/--report")
        _print_catalog(catalog_view(plan, workload, reports_dir, catalog_file, specs_file), as_json)
        return
    spec = find_gpu(gpu, specs_file) if gpu else None
    board = spec.board_power_w if spec else None
    if tokens_per_sec is not None:
        if not tokens_per_sec > 0:
            raise GptbenchError(f"--tokens-per-sec must be positive, got {tokens_per_sec:g}")
        throughput = Throughput(tokens_per_sec, "given", "--tokens-per-sec", gpu=spec.name if spec else None)
    elif spec is not None:
        if report is not None:
            raise GptbenchError("--gpu and --report both name the hardware; drop --gpu (the report says which GPU it ran on)")
        throughput = for_gpu(spec, workload, reports_dir, specs_file)
    else:
        report = report or newest_report(reports_dir)
        throughput, board = from_report(report, run, specs_file)
    explained = None
    if explain:
        explained = explain_gpu(spec, workload, throughput) if spec else explain_report(report or "", run, specs_file)
    _print_estimate(estimate(plan, throughput, board), as_json, explained, workload)


def with_switches(w: Workload, gpus: int | None, shard: str, checkpointing: bool) -> Workload:
    """The workload over `gpus` ranks with its state sharded and its blocks recomputed as asked."""
    from dataclasses import replace

    if shard != "none" and (gpus or 1) < 2:
        raise GptbenchError(f"--shard {shard} splits the training state over GPUs: add --gpus 2 or more")
    return replace(w, world_size=gpus or 1, sharding=shard, activation_checkpointing=checkpointing)


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def _hours(hours: float) -> str:
    return f"{hours:,.2f} h = {hours / 24:,.2f} days"


def _print_estimate(e: Estimate, as_json: bool, explained: Breakdown | None = None, workload: Workload | None = None) -> None:
    t = e.throughput
    if as_json:
        data = e.to_dict()
        if explained is not None:
            data["breakdown"] = explained.to_dict()
        out.print_json(json.dumps(data))
        return
    label = f" ({t.basis})"
    table = Table(title=f"gptbench estimate · {t.basis}", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("tokens", f"{e.plan.tokens:,.0f}")
    rate = f"{e.tokens_per_sec:,.0f} tok/s on {e.gpus} {t.device}(s){label}"
    if e.hours_range and t.basis == "projected":
        slow, fast = (e.tokens_per_sec * e.hours / h for h in (e.hours_range[1], e.hours_range[0]))
        rate += f"  ({t.range_basis}: {slow:,.0f}–{fast:,.0f})"
    table.add_row("throughput", rate)
    if t.evidence:
        table.add_row("evidence", escape(t.evidence))
    time = _hours(e.hours)
    if e.hours_range:
        time += f"  ({t.range_basis}: {e.hours_range[0]:,.2f}–{e.hours_range[1]:,.2f} h)"
    table.add_row("time" + label if t.basis == "projected" else "time", time)
    if e.cost_usd is not None:
        cost = f"{_money(e.cost_usd)} at {_money(e.price_per_hour_usd)}/hour"
        if e.cost_range_usd:
            cost += f"  (range {_money(e.cost_range_usd[0])}–{_money(e.cost_range_usd[1])})"
        table.add_row("cost" + label if t.basis == "projected" else "cost", cost)
    if e.electricity is not None:
        el = e.electricity
        table.add_row(
            "electricity",
            f"{el.kwh:,.1f} kWh × ${el.kwh_price_usd:g}/kWh = {_money(el.cost_usd)} ({el.power_w:,.0f} W, {el.power_basis})",
        )
    if t.memory_gb is not None:
        fits = {True: "fits", False: "does NOT fit", None: "capacity unknown"}[t.fits]
        table.add_row("memory (est.)", f"{t.memory_gb:,.1f} GB of {t.memory_capacity_gb or '?'} GB: {fits} at this batch")
    out.print(table)
    if t.fits is False and workload is not None:
        what = _what_fits(workload, t)
        out.print(f"[yellow]warning:[/yellow] estimated not to fit in memory at this batch; {what}", soft_wrap=True)
    if explained is not None:
        _print_breakdown(explained)
    _print_assumptions(e.assumptions)


def _what_fits(w: Workload, t: Throughput) -> str:
    """The cheapest switch that the memory model says makes the workload fit, or a smaller batch."""
    from gptbench.predict.fit import cheapest_fit

    fit = cheapest_fit(w, t.memory_capacity_gb) if w is not None and t.memory_capacity_gb else None
    if fit is None:
        more = "" if w is None or w.world_size > 1 else " or more GPUs with --shard"
        return f"try a smaller --batch{more}"
    flags = fit.switch.flags if fit.switch.sharding != "none" or w.sharding == "none" else f"--shard none {fit.switch.flags}"
    return f"it fits with {flags} ({fit.breakdown.total_gb:,.1f} GB per GPU; costs {fit.switch.cost})"


def _print_breakdown(b: Breakdown) -> None:
    table = Table(title=f"where a step's time goes on {b.gpu} (modelled: the projection's operations)", title_justify="left")
    for name, justify in (
        ("group", "left"),
        ("ms", "right"),
        ("share", "right"),
        ("bound", "left"),
        ("what would change it", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for g in b.groups:
        table.add_row(g.group, f"{g.time_s * 1e3:,.1f}", f"{g.share:.0%}", g.bound, escape(g.switch))
    table.add_row("modelled step", f"{b.step_time_s * 1e3:,.1f}", "100%", "", "")
    if b.measured_step_time_s is not None:
        ratio = b.step_time_s / b.measured_step_time_s
        table.add_row(
            "measured step",
            f"{b.measured_step_time_s * 1e3:,.1f}",
            "",
            "",
            escape(f"{b.measured_source}; modelled/measured {ratio:.2f}"),
        )
    out.print(table)


def _print_assumptions(lines: list[str]) -> None:
    out.print("[bold]assumptions[/bold]")
    for line in lines:
        out.print(f"  • {escape(line)}", highlight=False, soft_wrap=True)


def _print_catalog(catalog: Catalog, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(catalog.to_dict()))
        return
    rows, notes = catalog.rows, catalog.assumptions
    table = Table(
        title="gptbench estimate --catalog · cheapest first (projected rows are projections, not measurements)",
        title_justify="left",
    )
    for name, justify in (
        ("#", "right"),
        ("offer", "left"),
        ("$/hour", "right"),
        ("tok/s", "right"),
        ("basis", "left"),
        ("time (range)", "right"),
        ("cost (range)", "right"),
        ("fits", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for i, row in enumerate(rows, start=1):
        o, e = row.offer, row.estimate
        # Provider and GPUs keep the table readable in 80 columns; instance names and dates are in --json.
        head = [str(i), escape(f"{o.provider} {o.gpus}× {o.gpu}"), f"${o.price_per_hour_usd:,.2f}"]
        if e is None:
            table.add_row(*head, "n/a", "—", "—", "—", escape(row.problem or ""))
            continue
        fits = {True: "yes", False: "[red]no[/red]", None: "?"}[e.throughput.fits]
        time, cost = f"{e.hours:,.1f} h", _money(e.cost_usd)
        if e.hours_range:  # measured: the p90-p10 steps; projected: the held-out band (leave one source out)
            time += f" ({e.hours_range[0]:,.0f}–{e.hours_range[1]:,.0f})"
        if e.cost_range_usd:
            cost += f" ({e.cost_range_usd[0]:,.0f}–{e.cost_range_usd[1]:,.0f})"
        basis = e.throughput.basis
        if e.throughput.evidence:  # what backs a projection, in a word: the full label is in --json
            short = {"validated:": "validated", "same": "same arch", "datasheet": "datasheet"}
            basis += "\n" + short.get(e.throughput.evidence.split()[0], "")
        table.add_row(*head, f"{e.tokens_per_sec:,.0f}", basis, time, cost, fits)
    if rows:
        dates = sorted(r.offer.observed for r in rows)
        notes = [*notes, f"prices observed {dates[0]} to {dates[-1]} (instance names, dates and sources: --json)"]
    out.print(table)
    _print_assumptions(notes)
