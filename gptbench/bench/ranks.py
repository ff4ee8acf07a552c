"""A multi-process `gptbench run` (DDP, ZeRO-1, FSDP2): the launcher's side (the single-process baseline in a child
process, then torch.distributed.run over the ranks) and a rank's side (its measured run and its scaling baseline).
Only rank 0 gets runs back to write; the other ranks train and leave quietly. torch is imported inside the functions:
the command module that calls them is imported without it."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gptbench.errors import GptbenchError

if TYPE_CHECKING:
    from gptbench.bench.config import BenchConfig, RunOptions
    from gptbench.bench.distributed import Baseline, RankEnv
    from gptbench.reports.schema import Run

MeasureFn = Callable[["BenchConfig", bool], "Run"]  # (config, show progress) -> the measured run, in this process
AloneFn = Callable[["BenchConfig"], "Run"]  # config -> the run, measured in a child process of its own


class RunFailed(Exception):
    """A measurement that started and failed (a rank's error, the baseline's status, torchrun's exit code): the
    command says the message in one line and exits 1. Bad input stays a GptbenchError (exit 2, before any work)."""


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
    args: list[str],
    measure: MeasureFn,
    measure_alone: AloneFn,
) -> list[Run] | None:
    """The runs for the report on rank 0; None on the other ranks, and in the launching process once its ranks
    are done (rank 0 wrote the report). `args` are the command's own options, forwarded to the ranks; `measure` and
    `measure_alone` measure one run here (with the progress display when `show`) and in a child process."""
    from gptbench.bench.distributed import RankEnv

    if batch_auto:
        raise GptbenchError("--batch auto searches with one process: find the batch that way, then pass --batch N here")
    env = RankEnv.from_environ()
    if env is not None:
        return _as_rank(config, env, nproc, scaling, baseline_report, timeout_s, lambda c: measure(c, show and env.rank == 0))
    if nproc is None:
        raise GptbenchError(
            "--scaling and --baseline-report describe a multi-process run: add --nproc N (or launch with torchrun)"
        )
    _launch(config, device, nproc, scaling, baseline_report, label, args, measure_alone)
    return None


def _as_rank(
    config: BenchConfig,
    env: RankEnv,
    nproc: int | None,
    scaling: bool,
    baseline: Path | None,
    timeout_s: float,
    measure: Callable[[BenchConfig], Run],
) -> list[Run] | None:
    from gptbench.bench.distributed import attach_scaling, process_group
    from gptbench.bench.worker import die_with_parent
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
    die_with_parent()  # a rank never outlives torchrun, even one killed outright
    base = _baseline(config, baseline, scaling) if baseline is not None and env.rank == 0 else None
    with process_group(config, env, timeout_s) as ranked:
        try:
            run = measure(ranked)
        except RuntimeError as e:  # out of memory, a peer gone, a collective past --dist-timeout
            hint = f" (a peer sent nothing for --dist-timeout {timeout_s:g} s)" if "timed out" in str(e).lower() else ""
            raise RunFailed(f"rank {env.rank} of {env.world_size}: {short(str(e), 300)}{hint}") from None
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
    config: BenchConfig,
    device: str,
    nproc: int,
    scaling: bool,
    baseline: Path | None,
    label: str | None,
    args: list[str],
    measure_alone: AloneFn,
) -> None:
    from gptbench.bench.distributed import check_nproc, cpu_share, launch

    check_nproc(nproc, device)
    if scaling and baseline is not None:
        raise GptbenchError("--scaling measures its own single-process baseline: drop --baseline-report, or drop --scaling")
    if baseline is not None:
        _baseline(config, baseline, False)  # refuse a report that does not match before any process starts
    args = list(args)
    with tempfile.TemporaryDirectory(prefix="gptbench-scaling-") as folder, cpu_share(nproc):
        if scaling:  # the single process holds everything: nothing to shard
            baseline = _measure_alone(dataclasses.replace(config, shard="none"), Path(folder), label, measure_alone)
        if baseline is not None:
            args += ["--baseline-report", str(baseline)]
        code = launch(nproc, ["-m", "gptbench", "run", *args])
    if code != 0:
        raise RunFailed(
            f"the {nproc}-process run failed: torch.distributed.run exited with code {code} "
            "after stopping every rank; the failing rank's message is above"
        )


def _measure_alone(config: BenchConfig, folder: Path, label: str | None, measure_alone: AloneFn) -> Path:
    """--scaling's first half: the same configuration in one process (a child process, so it leaves no GPU
    memory behind for the ranks), written as a report for rank 0 to read."""
    from gptbench.bench.runner import new_report
    from gptbench.reports.store import write_report
    from gptbench.reports.text import short

    run = measure_alone(config)
    if run.result.status != "ok":
        raise RunFailed(f"the single-process baseline ended with status {run.result.status}: {short(run.result.error, 300)}")
    return write_report(new_report(config.torch_device, label, [run]), folder)
