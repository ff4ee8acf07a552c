"""`gptbench run` over several processes (DDP): its options, the `--nproc` launcher's side, and a rank's side.
Only rank 0 shows progress and gets runs back to write and print; the other ranks train and leave quietly."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import click
import typer

from gptbench.cli.common import err
from gptbench.errors import GptbenchError

if TYPE_CHECKING:  # types only: the command module is imported without torch
    from gptbench.bench.config import BenchConfig, RunOptions
    from gptbench.bench.distributed import Baseline, RankEnv
    from gptbench.reports.schema import Run

Nproc = Annotated[
    Optional[int],
    typer.Option(help="Launch N processes with torch.distributed.run: DDP, one per GPU (gloo with --device cpu)."),
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
    float, typer.Option(help="Seconds a rank waits for the others (forming the group, each step) before the run stops.")
]


def placed(options: RunOptions) -> RunOptions:
    """Under torchrun, `options` with this rank's own device (cuda:LOCAL_RANK or cpu); otherwise unchanged."""
    from gptbench.bench.distributed import RankEnv, claim_device

    env = RankEnv.from_environ()
    return options if env is None else dataclasses.replace(options, device=claim_device(options.device, env))


def check_shard(shard: str, nproc: int | None) -> None:
    """Refuse sharding without a group of two or more processes to split over, before any work."""
    from gptbench.bench.config import SHARDS
    from gptbench.bench.distributed import RankEnv

    if shard not in SHARDS:
        raise GptbenchError(f"--shard {shard}: choose one of {', '.join(SHARDS)}")
    if shard == "none":
        return
    env = RankEnv.from_environ()
    world = env.world_size if env is not None else nproc
    if world is None or world < 2:
        given = "no --nproc" if world is None else f"{'WORLD_SIZE' if env is not None else '--nproc'} {world}"
        raise GptbenchError(
            f"--shard {shard} splits the training state over processes, and this run has {given}: add --nproc 2 or more"
        )


def wanted(nproc: int | None, scaling: bool, baseline_report: Path | None) -> bool:
    """Whether this `gptbench run` is a multi-process one: asked for, or started by torchrun."""
    from gptbench.bench.distributed import launched_as_rank

    return nproc is not None or scaling or baseline_report is not None or launched_as_rank()


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
    """The runs for the report on rank 0; None on the other ranks, and in the launching process once its ranks
    are done (rank 0 wrote the report). `ctx` is the command's: its options are forwarded to the ranks."""
    from gptbench.bench.distributed import RankEnv

    if batch_auto:
        raise GptbenchError("--batch auto searches with one process: find the batch that way, then pass --batch N here")
    env = RankEnv.from_environ()
    if env is not None:
        return _as_rank(config, env, nproc, scaling, baseline_report, timeout_s, show)
    if nproc is None:
        raise GptbenchError(
            "--scaling and --baseline-report describe a multi-process run: add --nproc N (or launch with torchrun)"
        )
    _launch(config, device, nproc, scaling, baseline_report, label, ctx)
    return None


def _as_rank(
    config: BenchConfig, env: RankEnv, nproc: int | None, scaling: bool, baseline: Path | None, timeout_s: float, show: bool
) -> list[Run] | None:
    from gptbench.bench.distributed import attach_scaling, process_group
    from gptbench.cli.progress import measure_with_progress
    from gptbench.reports.text import short

    if nproc is not None:
        raise GptbenchError(
            "--nproc launches torch.distributed.run itself; under torchrun leave it out (--nproc-per-node sets it)"
        )
    if scaling and baseline is None:
        raise GptbenchError(
            "--scaling under torchrun: measure one process first (gptbench run, same options) and pass that report "
            "as --baseline-report FILE (--scaling then copies its run into this report)"
        )
    base = _baseline(config, baseline, scaling) if baseline is not None and env.rank == 0 else None
    with process_group(config, env, timeout_s) as ranked:
        try:
            run = measure_with_progress(ranked, show and env.rank == 0)
        except RuntimeError as e:  # out of memory, a peer gone, a collective past --dist-timeout
            hint = f" (a peer sent nothing for --dist-timeout {timeout_s:g} s)" if "timed out" in str(e).lower() else ""
            err.print(f"[red]error:[/red] rank {env.rank} of {env.world_size}: {short(str(e), 300)}{hint}", soft_wrap=True)
            raise typer.Exit(1) from None
    if env.rank != 0:
        return None
    if base is None:
        return [run]
    attach_scaling(run, base)
    if not scaling:
        return [run]
    run.name, base.run.name = f"{env.world_size} processes", "1 process"
    return [run, base.run]  # the denominator's own measurement, in the same report


def _baseline(config: BenchConfig, path: Path, copied: bool) -> Baseline:
    """The baseline run in `path` for `config`; `copied`: it goes into this report too (--scaling)."""
    from gptbench.bench.distributed import find_baseline
    from gptbench.bench.runner import planned_params, run_config
    from gptbench.hardware.machine import fingerprint

    wanted = run_config(config, planned_params(config))
    source = 'run 1 of this report, "1 process"' if copied else None
    return find_baseline(path, wanted, fingerprint(config.torch_device).accelerator, source)


def _launch(
    config: BenchConfig, device: str, nproc: int, scaling: bool, baseline: Path | None, label: str | None, ctx: typer.Context
) -> None:
    from gptbench.bench.distributed import check_nproc, cpu_share, launch

    check_nproc(nproc, device)
    if scaling and baseline is not None:
        raise GptbenchError("--scaling measures its own single-process baseline: drop --baseline-report, or drop --scaling")
    if baseline is not None:
        _baseline(config, baseline, False)  # refuse a report that does not match before any process starts
    args = forwarded_args(ctx, drop={"nproc", "baseline_report"})
    with tempfile.TemporaryDirectory(prefix="gptbench-scaling-") as folder, cpu_share(nproc):
        if scaling:  # the single process holds everything: nothing to shard
            baseline = _measure_alone(dataclasses.replace(config, shard="none"), Path(folder), label)
        if baseline is not None:
            args += ["--baseline-report", str(baseline)]
        code = launch(nproc, ["-m", "gptbench", "run", *args])
    if code != 0:
        err.print(
            f"[red]error:[/red] the {nproc}-process run failed: torch.distributed.run exited with code {code} "
            "after stopping every rank; the failing rank's message is above",
            soft_wrap=True,
        )
        raise typer.Exit(1)


def _measure_alone(config: BenchConfig, folder: Path, label: str | None) -> Path:
    """--scaling's first half: the same configuration in one process (a child process, so it leaves no GPU
    memory behind for the ranks), written as a report for rank 0 to read."""
    from gptbench.bench.runner import new_report
    from gptbench.bench.worker import run_in_subprocess
    from gptbench.reports.store import write_report
    from gptbench.reports.text import fmt_rate, short

    with err.status("measuring 1 process first (the scaling baseline)…"):
        run = run_in_subprocess(config)
    if run.result.status != "ok":
        err.print(
            f"[red]error:[/red] the single-process baseline ended with status {run.result.status}: {short(run.result.error, 300)}"
        )
        raise typer.Exit(1)
    err.print(f"1 process: {fmt_rate(run.result.tokens_per_sec)}; now the multi-process run", highlight=False)
    return write_report(new_report(config.torch_device, label, [run]), folder)


def forwarded_args(ctx: typer.Context, drop: set[str]) -> list[str]:
    """The options command context `ctx` was given on its command line (defaults left out), minus `drop`, as arguments."""
    args: list[str] = []
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name is None or param.name in drop:
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
