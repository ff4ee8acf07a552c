"""`gptbench run` over several processes (DDP): its options, and the call into bench/ranks.py (the `--nproc`
launcher's side and a rank's side) with this command's displays: the progress bar on rank 0, the baseline's spinner."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape
from typer.core import TyperOption

from gptbench.bench.ranks import RunFailed
from gptbench.cli import checks
from gptbench.cli.common import err

if TYPE_CHECKING:  # types only: the command module is imported without torch
    from gptbench.bench.config import BenchConfig
    from gptbench.reports.schema import Run

Nproc = Annotated[
    Optional[int],
    typer.Option(
        help="Launch N processes with torch.distributed.run: DDP, one per GPU (gloo with --device cpu).",
        callback=checks.whole(1, checks.NPROC_MAX),
    ),
]
Scaling = Annotated[
    bool, typer.Option("--scaling", help="With --nproc: measure 1 process first, then N, and report the scaling efficiency.")
]
BaselineReport = Annotated[
    Optional[Path],
    typer.Option(help="A single-process report of the same configuration: the base of a multi-process run's scaling efficiency."),
]
Shard = Annotated[
    str,
    typer.Option(
        help="With --nproc: none (DDP), optimizer (ZeRO-1: AdamW state split over ranks) or full (FSDP2: weights, "
        "gradients and state split)."
    ),
]
DistTimeout = Annotated[
    float,
    typer.Option(
        help="Seconds a rank waits for the others (forming the group, each step) before the run stops.",
        callback=checks.SECONDS,
    ),
]


def measure_ranks(
    config: BenchConfig,
    device: str,
    nproc: int | None,
    scaling: bool,
    baseline_report: Path | None,
    *,
    timeout_s: float,
    batch_auto: bool,
    show: bool,
    label: str | None,
    ctx: typer.Context,
) -> list[Run] | None:
    """bench.ranks.measure_ranks with this command's options forwarded to the ranks (`ctx`) and its displays; a
    measurement that failed is one red line and exit code 1."""
    from gptbench.bench import ranks
    from gptbench.cli.progress import measure_with_progress

    args = forwarded_args(ctx, drop={"nproc", "baseline_report"})
    try:
        return ranks.measure_ranks(
            config, device, nproc, scaling, baseline_report, timeout_s=timeout_s, batch_auto=batch_auto, show=show,
            label=label, args=args, measure=measure_with_progress, measure_alone=_measure_alone,
        )  # fmt: skip
    except RunFailed as e:
        err.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None


def _measure_alone(config: BenchConfig) -> Run:
    """--scaling's single process, measured in a child process under a spinner; its rate said when it is ok."""
    from gptbench.bench.worker import run_in_subprocess
    from gptbench.reports.text import fmt_rate

    with err.status("measuring 1 process first (the scaling baseline)…"):
        run = run_in_subprocess(config)
    if run.result.status == "ok":
        err.print(f"1 process: {fmt_rate(run.result.tokens_per_sec)}; now the multi-process run", highlight=False)
    return run


def forwarded_args(ctx: typer.Context, drop: set[str]) -> list[str]:
    """The options command context `ctx` was given on its command line (defaults left out), minus `drop`, as arguments."""
    args: list[str] = []
    for param in ctx.command.params:
        if not isinstance(param, TyperOption) or param.name is None or param.name in drop:
            continue
        source = ctx.get_parameter_source(param.name)
        if source is None or source.name == "DEFAULT":
            continue
        value = ctx.params[param.name]
        if param.is_flag and param.secondary_opts:
            args.append(param.opts[0] if value else param.secondary_opts[0])
        elif param.is_flag:
            args += [param.opts[0]] if value else []
        elif isinstance(value, (list, tuple)):  # a repeatable option (--model-arg): once per value
            args += [part for item in value for part in (param.opts[0], str(item))]
        elif value is not None:
            args += [param.opts[0], str(value)]
    return args
