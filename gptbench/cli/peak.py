"""`gptbench peak`: what the silicon delivers (matmul TFLOP/s per precision, memory bandwidth), written as a report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gptbench.cli import checks
from gptbench.cli import options as opt
from gptbench.cli.common import MEASURE, app, err, friendly, kept, out, say_unwritten
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


def measure_and_write_peak(
    device_name: str, budget_s: float, label: str | None, out_dir: Path, as_json: bool = False
) -> Path | None:
    """Measure the peak on `device_name`, write it as a report and print its table (or the report as JSON); returns the
    path (None when it could not be written: said in a line, the table still printed)."""
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
    path = kept(lambda: write_report(report, out_dir))
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        out.print(peak_table(peak, _datasheet(device)))
    if path is not None:
        (err if as_json else out).print(f"report: {path}", soft_wrap=True, highlight=False)
    return path


def peak_in_child(device: str, budget_s: float, out_dir: Path, show: bool = True) -> Path | None:
    """`gptbench peak` in its own process, its table passed through (with `show`): the suite's process then never holds
    a CUDA context (or the peak's cached memory) on the GPU while its runs, each in a process of its own, measure it.
    None when the child measured but could not write its report (exit 1; it said why on stderr)."""
    import subprocess
    import sys

    from gptbench.errors import GptbenchError, WriteFailed

    cmd = [sys.executable, "-m", "gptbench", "peak", "--device", device, "--budget-s", str(budget_s), "--label", "suite-peak"]
    proc = subprocess.run([*cmd, "--out", str(out_dir)], stdout=subprocess.PIPE, text=True, check=False)
    if show:
        out.print(proc.stdout.rstrip(), markup=False, highlight=False, soft_wrap=True)
    found = [line.split(":", 1)[1].strip() for line in proc.stdout.splitlines() if line.startswith("report:")]
    if proc.returncode == 1 and not found:
        say_unwritten(WriteFailed(out_dir, "the peak's report was not written (the reason is above)"))
        return None
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
