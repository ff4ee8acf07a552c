from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gptbench.cli import app
from gptbench.reports.store import load_report

runner = CliRunner()
TINY = ["run", "--device", "cpu", "--model", "tiny", "--steps", "2", "--warmup", "1"]


def test_run_writes_a_report_and_prints_a_summary(tmp_path: Path) -> None:
    result = runner.invoke(app, [*TINY, "--out", str(tmp_path), "--label", "ci"])
    assert result.exit_code == 0, result.output
    (path,) = tmp_path.iterdir()
    assert path.name.endswith("_ci.json")
    report = load_report(path)
    assert report.label == "ci" and report.machine.accelerator.kind == "cpu"
    run = report.runs[0]
    assert run.result.status == "ok" and run.config.model.preset == "tiny" and len(run.result.step_times_s) == 2
    for text in ("tokens/s", "MFU", "FineWeb-10B", "one epoch (10e9 tokens)", path.name):
        assert text in result.output.replace("\n", ""), text


def test_json_prints_the_report(tmp_path: Path) -> None:
    result = runner.invoke(app, [*TINY, "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["schema"] == "gptbench.report/1" and data["runs"][0]["result"]["status"] == "ok"


def test_shape_overrides_reach_the_report(tmp_path: Path) -> None:
    args = ["run", "--device", "cpu", "--model", "124m", "--n-layer", "1", "--n-head", "2", "--n-embd", "32"]
    result = runner.invoke(app, [*args, "--seq", "32", "--batch", "2", "--steps", "1", "--warmup", "0", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    model = load_report(next(tmp_path.iterdir())).runs[0].config.model
    assert (model.n_layer, model.n_head, model.n_embd, model.block_size) == (1, 2, 32, 1024)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "huge"], "unknown model preset 'huge'"),
        (["--model", "tiny", "--seq", "4096"], "--seq 4096 is longer than the model's 128 positions"),
        (["--model", "tiny", "--batch", "0"], "--batch 0: give a whole number from 1"),
        (["--model", "tiny", "--steps", "0"], "--steps 0: give a whole number from 1"),
        (["--model", "tiny", "--grad-accum", "-1"], "--grad-accum -1: give a whole number from 1"),
        (["--model", "tiny", "--data", "/nonexistent/shards"], "no such file or folder"),
        (["--device", "mps"], "MPS is not available"),
        (["--device", "quantum"], "unknown device"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    base = [] if "--device" in args else ["--device", "cpu"]
    result = runner.invoke(app, ["run", *base, *args, "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.output
    assert not any(tmp_path.iterdir())  # nothing written


def test_corrupt_shard_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "data_train_000001.bin"
    bad.write_bytes(b"\x00" * 2000)
    result = runner.invoke(app, [*TINY, "--data", str(bad), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert f"{bad}: not a token shard: magic number 0" in result.stderr


def test_cuda_without_cuda_is_refused(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = runner.invoke(app, ["run", "--device", "cuda", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "CUDA is not available" in result.stderr


def test_python_dash_m_runs_from_a_checkout() -> None:
    result = subprocess.run([sys.executable, "-m", "gptbench", "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.startswith("gptbench ")
