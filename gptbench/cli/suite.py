"""`gptbench suite`: the standard set of reports for a machine to send back, in one go: the measured peak, the default
run, the fastest batch that fits, the ladder; each measured in a process of its own."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from gptbench.cli import checks
from gptbench.cli import options as opt
from gptbench.cli.common import MEASURE, app, err, friendly, kept, out
from gptbench.cli.peak import BudgetS
from gptbench.cli.preload import prepare_allocator


@app.command(rich_help_panel=MEASURE)
@friendly
def suite(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the suite's reports.")] = Path("reports"),
    device: opt.Device = "auto",
    model: opt.Model = "124m",
    seq: opt.Seq = None,
    steps: Annotated[int, typer.Option(help="Measured steps of every run.", callback=checks.whole(1, checks.STEPS_MAX))] = 20,
    warmup: opt.Warmup = None,
    memory_limit: opt.MemoryLimit = None,
    headroom: opt.Headroom = 0.1,
    max_batch: opt.MaxBatch = 256,
    probe_step_limit_s: opt.ProbeStepLimit = opt.PROBE_STEP_LIMIT_S,
    budget_s: BudgetS = 1.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the suite's reports (peak, default, auto batch, ladder) as a JSON list.")
    ] = False,
    allocator: opt.Allocator = "auto",
    threads: opt.Threads = None,
    loss: opt.Loss = "standard",
    compile_mode: opt.CompileMode = "default",
    fp8: opt.Fp8 = False,
) -> None:
    """The standard set for a machine to send back: peak, the default run, the fastest batch that fits, the ladder."""
    from gptbench.bench.config import resolve_config
    from gptbench.bench.runner import finish_report, new_report
    from gptbench.bench.worker import run_in_subprocess
    from gptbench.cli.peak import peak_in_child
    from gptbench.cli.run import search_batch
    from gptbench.cli.series import run_ladder
    from gptbench.reports.store import load_report
    from gptbench.studies.suite import ladder_reuse
    from gptbench.views.summary import print_run_summary

    prepare_allocator(allocator, device)
    start = time.perf_counter()
    config = resolve_config(
        opt.run_options(
            device=device, model=model, seq=seq, steps=steps, warmup=warmup, allocator=allocator, threads=threads,
            loss=loss, compile_mode=compile_mode, fp8=fp8,
        )  # fmt: skip
    )
    limit_gb = opt.memory_limit_gb(memory_limit, config.device)
    peak_path = peak_in_child(config.device, budget_s, out_dir, show=not as_json)  # None: measured, not written
    paths: list[Path | None] = [peak_path] if peak_path is not None else []
    reports = [load_report(peak_path)] if peak_path is not None else []
    with err.status(f"run at the default configuration ({config.device})…"):
        default_run = run_in_subprocess(config)
    reports.append(new_report(config.torch_device, "suite-default", [default_run]))
    paths.append(kept(lambda: finish_report(reports[-1], out_dir)))  # a failed write is said; the suite goes on
    if not as_json:
        print_run_summary(out, reports[-1], default_run, paths[-1])
    runs, stopped = search_batch(config, limit_gb, headroom, max_batch, probe_step_limit_s)
    reports.append(new_report(config.torch_device, "suite-auto-batch", runs))
    paths.append(kept(lambda: finish_report(reports[-1], out_dir)))
    if not as_json:
        print_run_summary(out, reports[-1], runs[0], paths[-1])
    if stopped is not None:  # the finished candidates are written above; the ladder is not started
        raise stopped
    largest, measured = ladder_reuse(config, default_run, runs)
    reports.append(new_report(config.torch_device, "suite-ablate"))
    paths.append(run_ladder(config, reports[-1], out_dir, largest, measured, table=not as_json).path)  # None: not written
    said = err if as_json else out  # with --json, stdout holds the JSON alone
    said.print(f"\nsuite finished in {time.perf_counter() - start:,.0f} s; reports in {out_dir}:", highlight=False)
    for path in (p for p in paths if p is not None):
        said.print(f"  {path}", soft_wrap=True, highlight=False)
    if as_json:
        out.print_json(json.dumps([r.to_dict() for r in reports]))
