"""Issue 29's switches on the CPU: --loss, --compile-mode and --fp8 refused before any work where they cannot run
(FP8 against fakes of a GPU's compute capability), FP8's layer choice against a fake torchao, each switch a rung of
the ladder, plumbed through sweep and the report, and old reports still loading."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from test_gpu_paths import GPUS, fake_cuda  # noqa: F401 - the fixture: a CUDA machine that is not there
from typer.testing import CliRunner

from gptbench.bench.config import RunOptions, resolve_config
from gptbench.bench.fp8 import convert_to_fp8
from gptbench.cli import app
from gptbench.errors import GptbenchError
from gptbench.hardware import capability as support
from gptbench.model.config import GPTConfig
from gptbench.model.gpt import GPT
from gptbench.reports.schema import Report
from gptbench.reports.store import load_report
from gptbench.studies.ablate import FRONTIER, plan_ladder
from gptbench.studies.sweep import plan_sweep

runner = CliRunner()
TINY_RUN = ["run", "--device", "cpu", "--model", "tiny", "--seq", "8", "--steps", "1", "--warmup", "0", "--allocator", "system"]


def _refused(args: list[str], tmp_path: Path) -> str:
    """The one line a refused command prints; it exits 2 and writes no report."""
    result = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert not list(tmp_path.glob("*.json"))
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--fp8"], "FP8 training needs an NVIDIA GPU with FP8 tensor cores (compute capability 8.9 or newer"),
        (["--loss", "fused"], "--loss fused: choose one of standard, chunked, liger, cce"),
        (["--loss", "liger"], "liger-kernel's kernels are written in Triton for CUDA GPUs; this run is on CPU"),
        (["--loss", "cce"], "cut-cross-entropy's kernels are written in Triton for CUDA GPUs"),
        (["--compile", "--compile-mode", "fast"], "--compile-mode fast: choose one of default, max-autotune-no-cudagraphs"),
        (["--compile-mode", "max-autotune-no-cudagraphs"], "is a mode of torch.compile: add --compile"),
        (["--compile", "--compile-mode", "reduce-overhead"], "records CUDA graphs, which need a CUDA device"),
    ],
)
def test_switches_that_cannot_run_here_are_refused_in_one_line(flags: list[str], said: str, tmp_path: Path) -> None:
    assert said in _refused([*TINY_RUN, *flags], tmp_path)


def test_fp8_is_refused_on_a_gpu_without_fp8_tensor_cores(fake_cuda: dict) -> None:  # noqa: F811
    fake_cuda[0] = ("NVIDIA A100-SXM4-80GB", (8, 0))
    with pytest.raises(GptbenchError, match=r"A100-SXM4-80GB \(sm80\) has no FP8 tensor cores: they need compute capability 8.9"):
        resolve_config(RunOptions(device="cuda", model="tiny", fp8=True))


def test_fp8_on_hopper_needs_torchao_and_bf16(fake_cuda: dict, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr(support, "_installed", lambda module: False)
    with pytest.raises(GptbenchError, match=r"--fp8: torchao is not installed: pip install 'gptbench\[fp8\]'"):
        resolve_config(RunOptions(device="cuda", model="tiny", fp8=True))
    monkeypatch.setattr(support, "_installed", lambda module: module == "torchao")
    with pytest.raises(GptbenchError, match="use --dtype bf16"):
        resolve_config(RunOptions(device="cuda", model="tiny", fp8=True, dtype="fp16"))
    assert resolve_config(RunOptions(device="cuda", model="tiny", fp8=True)).fp8  # an H100 with torchao: it runs


def _compiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.compile's CUDA prerequisites (Triton, a C compiler, Python.h) as a GPU machine has them."""
    monkeypatch.setattr(support, "_has_triton", lambda: True)
    monkeypatch.setattr(support, "c_compiler", lambda: "/usr/bin/gcc")
    monkeypatch.setattr(support, "python_headers", lambda: "/usr/include/python3/Python.h")


def test_a_library_loss_on_cuda_needs_the_library(fake_cuda: dict, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    _compiles(monkeypatch)
    monkeypatch.setattr(support, "_installed", lambda module: False)
    with pytest.raises(GptbenchError, match="liger-kernel is not installed: pip install liger-kernel"):
        resolve_config(RunOptions(device="cuda", model="tiny", loss="liger"))
    monkeypatch.setattr(support, "_installed", lambda module: module == "liger_kernel")
    assert resolve_config(RunOptions(device="cuda", model="tiny", loss="liger")).loss == "liger"
    config = resolve_config(RunOptions(device="cuda", model="tiny", compile_mode="reduce-overhead"))
    assert config.compile and config.compile_mode == "reduce-overhead"  # CUDA compiles by default: the mode applies


def _fake_torchao(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """torchao.float8 as far as gptbench uses it: convert_to_float8_training(module, module_filter_fn=...)."""
    swapped: list[str] = []

    def convert(model: torch.nn.Module, *, module_filter_fn) -> torch.nn.Module:  # noqa: ANN001
        swapped.extend(name for name, m in model.named_modules() if module_filter_fn(m, name))
        return model

    float8 = ModuleType("torchao.float8")
    float8.convert_to_float8_training = convert
    monkeypatch.setitem(sys.modules, "torchao", ModuleType("torchao"))
    monkeypatch.setitem(sys.modules, "torchao.float8", float8)
    return swapped


def test_fp8_converts_the_blocks_linears_and_keeps_the_tied_head(monkeypatch: pytest.MonkeyPatch) -> None:
    swapped = _fake_torchao(monkeypatch)
    model = GPT(GPTConfig.from_name("tiny"))  # 2 blocks, 64 wide: every block linear divides by 16
    assert convert_to_fp8(model) == 8
    per_block = ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]
    assert swapped == [f"h.{i}.{name}" for i in range(2) for name in per_block]  # never lm_head


def test_fp8_leaves_linears_fp8_matmuls_cannot_take(monkeypatch: pytest.MonkeyPatch) -> None:
    swapped = _fake_torchao(monkeypatch)
    model = torch.nn.Sequential(torch.nn.Linear(64, 48), torch.nn.Linear(48, 50))  # 50 does not divide by 16
    assert convert_to_fp8(model) == 1 and swapped == ["0"]
    monkeypatch.setitem(sys.modules, "torchao.float8", None)  # torchao uninstalled since the check: one line still
    with pytest.raises(GptbenchError, match="--fp8: torchao does not import"):
        convert_to_fp8(model)


def test_on_a_cpu_the_ladder_measures_the_chunked_loss_and_says_why_it_skips_the_rest() -> None:
    ladder = {rung.name: rung for rung in plan_ladder(resolve_config(RunOptions(device="cpu", model="tiny")))}
    chunked, fp8, autotune, graphs = (ladder[rung.name] for rung in FRONTIER)
    assert chunked.skipped is None and chunked.config.loss == "chunked"
    assert fp8.skipped.startswith("FP8 training needs an NVIDIA GPU") and not fp8.config.fp8
    assert "tune GPU kernels" in autotune.skipped and "tune GPU kernels" in graphs.skipped
    assert graphs.config.compile_mode == "default"


def test_on_a_hopper_gpu_every_frontier_rung_adds_its_switch(fake_cuda: dict, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    _compiles(monkeypatch)
    monkeypatch.setattr(support, "_installed", lambda module: module == "torchao")
    ladder = {p.name: p for p in plan_ladder(resolve_config(RunOptions(device="cuda", model="tiny")))}
    top = [ladder[rung.name] for rung in FRONTIER]
    assert [p.skipped for p in top] == [None] * 4
    last = top[-1].config
    assert (last.loss, last.fp8, last.compile_mode, last.dtype, last.compile) == ("chunked", True, "max-autotune", "bf16", True)
    assert top[2].config.compile_mode == "max-autotune-no-cudagraphs"
    monkeypatch.setattr(support, "_installed", lambda module: False)
    fp8 = next(p for p in plan_ladder(resolve_config(RunOptions(device="cuda", model="tiny"))) if "FP8" in p.name)
    assert fp8.skipped.startswith("torchao is not installed")


def test_sweep_crosses_the_new_switches() -> None:
    base = RunOptions(device="cpu", model="tiny", seq_len=8)
    plan = plan_sweep(base, {"loss": ["standard", "chunked"], "compile": [True], "compile_mode": ["default"]})
    assert [c.loss for c in plan.configs] == ["standard", "chunked"]
    assert plan.names == ["loss=standard compile=on compile-mode=default", "loss=chunked compile=on compile-mode=default"]
    with pytest.raises(GptbenchError, match="sweep point fp8=on: --fp8: FP8 training needs"):
        plan_sweep(base, {"fp8": [True]})


def test_a_chunked_run_says_so_in_its_report_and_summary(tmp_path: Path) -> None:
    result = runner.invoke(app, [*TINY_RUN, "--loss", "chunked", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    path = next(tmp_path.glob("*.json"))
    run = load_report(path).runs[0]
    assert (run.config.loss, run.config.compile_mode, run.config.fp8) == ("chunked", "default", False)
    assert run.result.status == "ok" and run.result.loss.all_finite
    assert "chunked loss" in result.stdout
    from gptbench.views.load import find_column, run_rows

    (row,) = run_rows(path, load_report(path))
    assert row["loss"] == "chunked" and find_column("dtype").cell(row).endswith("sdpa chunked loss")  # compare's column


def test_reports_from_before_the_switches_load_as_the_plain_trainer() -> None:
    report = load_report(Path(__file__).parents[1] / "reports/reference/20261204-175913_vm_nvidia-h200_acceptance-default.json")
    config = report.runs[0].config
    assert (config.loss, config.compile_mode, config.fp8) == ("standard", "default", False)
    again = Report.from_dict(report.to_dict()).runs[0].config
    assert dataclasses.asdict(again) == dataclasses.asdict(config)


def test_fp8_with_the_real_torchao_swaps_the_block_linears() -> None:
    """Where torchao is installed (the GPU session's carried wheel; CI's CPU install has none): its real API, its real
    Float8Linear, the head left alone."""
    pytest.importorskip("torchao.float8")
    model = GPT(GPTConfig.from_name("tiny"))
    assert convert_to_fp8(model) == 8
    assert type(model.h[0].attn.c_attn).__name__ == "Float8Linear" and type(model.lm_head) is torch.nn.Linear
