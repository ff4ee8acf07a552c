"""`gptbench plan`: where and how to run a whole training run, within a deadline or a budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from gptbench.cli import checks
from gptbench.cli.common import DECIDE, app, friendly, kept, out, warn
from gptbench.cloud.options import DEFAULT_TOKENS_PER_STEP, PlanRequest
from gptbench.cloud.plan import make_plan
from gptbench.cloud.tokens import parse_tokens
from gptbench.model.config import GPTConfig, count_params
from gptbench.reports.store import scan_reports


@app.command(name="plan", rich_help_panel=DECIDE)
@friendly
def plan_command(
    ctx: typer.Context,
    tokens: Annotated[str, typer.Option(help="10e9, 2.5B, 300M, fineweb-10b, or chinchilla (20 × the --model's parameters).")] = (
        "fineweb-10b"
    ),
    model: Annotated[str, typer.Option(help="Preset: tiny, 124m … 1558m, book-124m ….")] = "124m",
    seq: Annotated[
        Optional[int],
        typer.Option(help="Sequence length (default: the model's block size).", callback=checks.whole(1, checks.SEQ_MAX)),
    ] = None,
    tokens_per_step: Annotated[
        int,
        typer.Option(help="Tokens per optimizer step (micro-batch × seq × GPUs × accumulation).", callback=checks.whole(1)),
    ] = DEFAULT_TOKENS_PER_STEP,
    max_hours: Annotated[
        Optional[float], typer.Option(help="Deadline: the cheapest option that finishes within it.", callback=checks.POSITIVE)
    ] = None,
    budget: Annotated[
        Optional[float], typer.Option(help="Budget in USD: the fastest option that costs no more.", callback=checks.POSITIVE)
    ] = None,
    kwh_price: Annotated[
        Optional[float], typer.Option(help="Electricity $/kWh for the machines you own.", callback=checks.POSITIVE)
    ] = None,
    power_w: Annotated[
        Optional[float], typer.Option(help="Your machine's whole draw in watts (default: measured).", callback=checks.POSITIVE)
    ] = None,
    gpu: Annotated[Optional[str], typer.Option(help="Only this GPU (a spec-table name); with --gpus, a machine to plan.")] = None,
    gpus: Annotated[
        Optional[int], typer.Option(help="Only machines with this many GPUs.", callback=checks.whole(1, checks.GPUS_MAX))
    ] = None,
    price: Annotated[
        Optional[float], typer.Option(help="$/GPU-hour for the --gpu X --gpus N machine.", callback=checks.POSITIVE)
    ] = None,
    vcpus: Annotated[
        Optional[int],
        typer.Option(
            help="CPUs of the --gpu X --gpus N machine: tokenizing is billed on them (default: one worker).",
            callback=checks.whole(1, checks.CPUS_MAX),
        ),
    ] = None,
    checkpoint_every: Annotated[
        int,
        typer.Option(help="Steps between checkpoints (0: none); their writes are billed.", callback=checks.whole(0)),
    ] = 1000,
    data: Annotated[str, typer.Option(help="tokenize (bill tokenizing the corpus) or shards (already tokenized).")] = "tokenize",
    reports_dir: Annotated[Path, typer.Option(help="Reports of your own machines (and measurements of GPUs).")] = Path("reports"),
    catalog_file: Annotated[Optional[Path], typer.Option(help="Your own price catalog (same columns as prices.csv).")] = None,
    html: Annotated[Optional[Path], typer.Option("--html", help="Also write a page: time against cost, Pareto front.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --html file.")] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Every option in the table, not only those that answer the question.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of the table (every option).")] = False,
) -> None:
    """Where and how to run a whole training run: every offer and your machines, the configuration that fits, ranked by cost."""
    checks.only_with(ctx, ("power_w",), kwh_price is not None, "--kwh-price")
    checks.only_with(ctx, ("force",), html is not None, "--html")
    from gptbench.views.files import check_targets, write_new
    from gptbench.views.plan import plan_view
    from gptbench.views.plan_html import to_html

    targets = check_targets({"--html": html}, force)
    total, how = parse_tokens(tokens, n_params=count_params(GPTConfig.from_name(model)))
    request = PlanRequest(
        total, how, model, seq, tokens_per_step, max_hours, budget, kwh_price, power_w, gpu, gpus, price, vcpus,
        checkpoint_every or None, data,
    )  # fmt: skip
    warn(scan_reports(reports_dir)[1])  # a bad file in the folder is skipped, not fatal
    plan = make_plan(request, reports_dir, catalog_file)
    html_path = kept(lambda: write_new(targets["--html"], to_html(plan), force)) if "--html" in targets else None
    if as_json:
        out.print_json(json.dumps(plan.to_dict()))
        return
    out.print(plan_view(plan, out.width, show_all), highlight=False)
    if html_path is not None:
        out.print(f"wrote {html_path}")
