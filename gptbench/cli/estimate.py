"""`gptbench estimate`: hours and dollars for a whole training run, from a report, a given speed, or a projection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from gptbench.cli import checks
from gptbench.cli.common import DECIDE, app, friendly, out, warn
from gptbench.cloud.breakdown import Breakdown, explain_gpu, explain_report
from gptbench.cloud.estimate import Estimate, RunPlan, Throughput, estimate
from gptbench.cloud.throughput import Catalog, catalog_view, for_gpu, from_report, newest_report, workload_for
from gptbench.cloud.tokens import parse_tokens
from gptbench.errors import GptbenchError
from gptbench.hardware.specs import find_gpu
from gptbench.model.config import GPTConfig, count_params
from gptbench.predict.workload import Workload
from gptbench.reports.store import scan_reports


@app.command(name="estimate", rich_help_panel=DECIDE)
@friendly
def estimate_command(
    ctx: typer.Context,
    tokens: Annotated[str, typer.Option(help="10e9, 2.5B, 300M, fineweb-10b, or chinchilla (20 × the --model's parameters).")] = (
        "fineweb-10b"
    ),
    epochs: Annotated[float, typer.Option(help="Passes over --tokens.", callback=checks.POSITIVE)] = 1.0,
    tokens_per_sec: Annotated[
        Optional[float], typer.Option(help="Use this throughput (global) instead of a report.", callback=checks.POSITIVE)
    ] = None,
    report: Annotated[Optional[Path], typer.Option(help="A report file: its fastest ok run, or --run N.")] = None,
    run: Annotated[
        Optional[int], typer.Option("--run", help="Which run of the report (0 = the first).", callback=checks.whole(0))
    ] = None,
    reports_dir: Annotated[Path, typer.Option(help="Where to look for the newest report and for measurements.")] = Path(
        "reports"
    ),
    gpu: Annotated[
        Optional[str], typer.Option(help="A GPU from the spec table: measured if a report has it, else projected.")
    ] = None,
    gpus: Annotated[
        Optional[int],
        typer.Option(help="GPUs for the run (default: as measured, or 1).", callback=checks.whole(1, checks.GPUS_MAX)),
    ] = None,
    scaling_efficiency: Annotated[
        Optional[float],
        typer.Option(
            help="Multi-GPU efficiency in (0, 1] (default: measured, else plan's scaling model).",
            callback=checks.number(0, 1),
        ),
    ] = None,
    price: Annotated[
        Optional[float], typer.Option(help="$/hour, per GPU or per instance (--price-per).", callback=checks.POSITIVE)
    ] = None,
    price_per: Annotated[
        str, typer.Option(help="gpu or instance: what --price is for.", callback=checks.one_of("gpu", "instance"))
    ] = "gpu",
    overhead: Annotated[
        float,
        typer.Option(
            help="Extra time for evaluation and checkpoints, as a fraction (0.1 = 10%).",
            callback=checks.number(0, 10, low_open=False, high_open=True),
        ),
    ] = 0.0,
    kwh_price: Annotated[
        Optional[float],
        typer.Option(help="Electricity price, $/kWh: adds the power bill of a local run.", callback=checks.POSITIVE),
    ] = None,
    power_w: Annotated[
        Optional[float],
        typer.Option(
            help="Average power of the whole machine in watts (default: measured, else board power).", callback=checks.POSITIVE
        ),
    ] = None,
    model: Annotated[str, typer.Option(help="Preset for chinchilla and projections: tiny, 124m … 1558m, book-124m ….")] = "124m",
    seq: Annotated[
        Optional[int],
        typer.Option(
            help="Sequence length for projections (default: the model's block size).", callback=checks.whole(1, checks.SEQ_MAX)
        ),
    ] = None,
    batch: Annotated[
        int,
        typer.Option(
            help="Micro-batch size for projections and the memory-fit check.", callback=checks.whole(1, checks.BATCH_MAX)
        ),
    ] = 16,
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
    checks.only_with(ctx, ("run",), tokens_per_sec is None and gpu is None and not catalog, "a report (--report or the newest)")
    checks.only_with(ctx, ("catalog_file",), catalog, "--catalog")
    checks.only_with(ctx, ("power_w",), kwh_price is not None, "--kwh-price")
    checks.only_with(ctx, ("price_per",), price is not None, "--price")
    total, how = parse_tokens(tokens, n_params=count_params(GPTConfig.from_name(model)), epochs=epochs)
    plan = RunPlan(total, how, gpus, scaling_efficiency, price, price_per, overhead, kwh_price, power_w)
    workload = with_switches(workload_for(model, seq, batch, dtype, compile, attention), gpus, shard, activation_checkpointing)
    if tokens_per_sec is not None and report is not None:
        raise GptbenchError("pass either --tokens-per-sec or --report, not both")
    if explain and (catalog or tokens_per_sec is not None):
        raise GptbenchError(
            "--explain breaks down one GPU's step: use it with --gpu NAME or a report, not --catalog/--tokens-per-sec"
        )
    if report is None and tokens_per_sec is None:  # the folder is read: a bad file in it is skipped, said once
        warn(scan_reports(reports_dir)[1])
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
    _print_estimate(estimate(plan, throughput, board, workload if spec else None), as_json, explained, workload)


def with_switches(w: Workload, gpus: int | None, shard: str, checkpointing: bool) -> Workload:
    """The workload over `gpus` ranks with its state sharded and its blocks recomputed as asked."""
    from dataclasses import replace

    if shard != "none" and (gpus or 1) < 2:
        raise GptbenchError(f"--shard {shard} splits the training state over GPUs: add --gpus 2 or more")
    return replace(w, world_size=gpus or 1, sharding=shard, activation_checkpointing=checkpointing)


def _print_estimate(e: Estimate, as_json: bool, explained: Breakdown | None = None, workload: Workload | None = None) -> None:
    from gptbench.views.estimate import estimate_view

    if as_json:
        data = e.to_dict()
        if explained is not None:
            data["breakdown"] = explained.to_dict()
        out.print_json(json.dumps(data))
        return
    out.print(estimate_view(e, explained, workload))


def _print_catalog(catalog: Catalog, as_json: bool) -> None:
    from gptbench.views.estimate import catalog_view as catalog_table

    if as_json:
        out.print_json(json.dumps(catalog.to_dict()))
        return
    out.print(catalog_table(catalog, out.width))
