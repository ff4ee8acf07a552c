"""`gptbench peak` (what the silicon delivers) and `gptbench suite` (the standard set of reports, in one go)."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gptbench.cli import checks
from gptbench.cli import options as opt
from gptbench.cli.common import MEASURE, app, err, friendly, out
from gptbench.cli.preload import prepare_allocator

if TYPE_CHECKING:  # types only: the command module is imported without torch
    import torch


def _datasheet(device: torch.device) -> dict[str, float]:
    """Datasheet peaks per precision for this GPU, where the spec table knows it."""
    import torch

    from gptbench.hardware.specs import match_device

    spec = match_device(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    if spec is None:
        return {}
    peaks = {"bf16": spec.bf16_tflops, "fp16": spec.fp16_tflops, "tf32": spec.tf32_tflops, "fp32": spec.fp32_tflops}
    return {k: v for k, v in peaks.items() if v}


def measure_and_write_peak(device_name: str, budget_s: float, label: str | None, out_dir: Path, as_json: bool = False) -> Path:
    """Measure the peak on `device_name`, write it as a report and print its table (or the report as JSON); returns the
    path."""
    import torch

    from gptbench.bench.runner import new_report
    from gptbench.hardware.device import resolve_device
    from gptbench.hardware.peak import measure_peak
    from gptbench.reports.store import write_report
    from gptbench.views.tables import peak_table

    if budget_s <= 0:
        from gptbench.errors import GptbenchError

        raise GptbenchError(f"--budget-s must be positive, got {budget_s}")
    device = resolve_device(device_name)
    with err.status("measuring matmul throughput…") as status:
        peak = measure_peak(
            device, budget_s, lambda m: status.update(f"{m.dtype} {m.m}×{m.n}×{m.k}: {m.tflops:,.3g} TFLOP/s; next…")
        )
    if device.type == "cuda":
        torch.cuda.empty_cache()  # leave the memory to the runs that follow (suite)
    report = new_report(device, label)
    report.peak = peak
    path = write_report(report, out_dir)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        err.print(f"report: {path}", soft_wrap=True, highlight=False)
    else:
        out.print(peak_table(peak, _datasheet(device)))
        out.print(f"report: {path}", soft_wrap=True, highlight=False)
    return path


def peak_in_child(device: str, budget_s: float, out_dir: Path, show: bool = True) -> Path:
    """`gptbench peak` in its own process, its table passed through (with `show`): the suite's process then never holds
    a CUDA context (or the peak's cached memory) on the GPU while its runs, each in a process of its own, measure it."""
    import subprocess
    import sys

    from gptbench.errors import GptbenchError

    cmd = [sys.executable, "-m", "gptbench", "peak", "--device", device, "--budget-s", str(budget_s), "--label", "suite-peak"]
    proc = subprocess.run([*cmd, "--out", str(out_dir)], stdout=subprocess.PIPE, text=True, check=False)
    if show:
        out.print(proc.stdout.rstrip(), markup=False, highlight=False, soft_wrap=True)
    found = [line.split(":", 1)[1].strip() for line in proc.stdout.splitlines() if line.startswith("report:")]
    if proc.returncode != 0 or not found:
        raise GptbenchError(f"gptbench peak --device {device} failed (exit code {proc.returncode}); run it alone to see why")
    return Path(found[-1])


BudgetS = Annotated[float, typer.Option(help="Seconds spent timing each shape and precision.", callback=checks.SECONDS)]


@app.command(rich_help_panel=MEASURE)
@friendly
def peak(
    device: opt.Device = "auto",
    budget_s: BudgetS = 1.0,
    label: opt.Label = "peak",
    out_dir: opt.OutDir = Path("reports"),
    as_json: opt.TableJson = False,
    allocator: opt.Allocator = "auto",
) -> None:
    """Achieved matmul TFLOP/s (bf16, fp16, tf32, fp32) and memory bandwidth; later runs in the same --out folder report MFU against it too ("% of achievable")."""  # noqa: E501
    prepare_allocator(allocator, device)
    measure_and_write_peak(device, budget_s, label, out_dir, as_json)


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
    from gptbench.bench.runner import new_report
    from gptbench.bench.worker import run_in_subprocess
    from gptbench.cli.run import finish_report, search_batch
    from gptbench.cli.series import run_ladder
    from gptbench.reports.store import load_report
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
    paths = [peak_in_child(config.device, budget_s, out_dir, show=not as_json)]
    reports = [load_report(paths[0])]
    with err.status(f"run at the default configuration ({config.device})…"):
        default_run = run_in_subprocess(config)
    reports.append(new_report(config.torch_device, "suite-default", [default_run]))
    paths.append(finish_report(reports[-1], out_dir))
    if not as_json:
        print_run_summary(out, reports[-1], default_run, paths[-1])
    runs = search_batch(config, limit_gb, headroom, max_batch, probe_step_limit_s)
    reports.append(new_report(config.torch_device, "suite-auto-batch", runs))
    paths.append(finish_report(reports[-1], out_dir))
    if not as_json:
        print_run_summary(out, reports[-1], runs[0], paths[-1])
    ok = [r for r in runs if r.result.status == "ok"]
    largest = max(r.config.micro_batch for r in ok) if ok else None
    # On a GPU the default configuration is the ladder's top rung: its runs are not measured twice.
    measured = {config: default_run, **{dataclasses.replace(config, micro_batch=r.config.micro_batch): r for r in ok}}
    reports.append(new_report(config.torch_device, "suite-ablate"))
    paths.append(run_ladder(config, reports[-1], out_dir, largest, measured, table=not as_json).path)
    said = err if as_json else out  # with --json, stdout holds the JSON alone
    said.print(f"\nsuite finished in {time.perf_counter() - start:,.0f} s; reports in {out_dir}:", highlight=False)
    for path in paths:
        said.print(f"  {path}", soft_wrap=True, highlight=False)
    if as_json:
        out.print_json(json.dumps([r.to_dict() for r in reports]))
