"""Multi-process runs (DDP over gloo on the CPU): world size, token accounting, one report, scaling efficiency,
and runs that cannot go on ending promptly instead of hanging. Each test that starts processes costs seconds."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from gptbench.bench import distributed
from gptbench.bench.distributed import Baseline, RankEnv, attach_scaling, check_nproc, find_baseline, torchrun_command
from gptbench.bench.harness import throughput
from gptbench.cli import app
from gptbench.errors import GptbenchError
from gptbench.reports.schema import Accelerator, Machine, ModelShape, Report, Run, RunConfig, RunResult
from gptbench.reports.store import load_report, write_report

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
TINY = ["--device", "cpu", "--model", "tiny", "--seq", "32", "--steps", "2", "--warmup", "1"]
RANK_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "OMP_NUM_THREADS")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in RANK_VARS}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def test_two_processes_one_report_global_tokens_and_scaling(tmp_path: Path) -> None:
    args = [*TINY, "--batch", "2", "--grad-accum", "2", "--nproc", "2", "--scaling", "--out", str(tmp_path)]
    proc = subprocess.run(
        [sys.executable, "-m", "gptbench", "run", *args], env=_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = tmp_path.iterdir()  # one report, from rank 0 alone
    assert proc.stdout.count("gptbench run ·") == 1 and proc.stdout.count("report: ") == 1
    assert "per process" in proc.stdout and "of linear" in proc.stdout
    ddp, alone = load_report(path).runs
    assert ddp.config.world_size == 2 and ddp.config.tokens_per_step == 2 * 2 * 32 * 2  # world × batch × seq × accum
    assert alone.config.world_size == 1 and alone.config.tokens_per_step == 2 * 32 * 2
    r = ddp.result
    assert r.status == "ok" and len(r.step_times_s) == 2
    assert r.tokens_per_sec == pytest.approx(throughput(r.step_times_s, 256).tokens_per_sec, rel=1e-3)  # global
    assert r.tokens_per_sec_per_rank == pytest.approx(r.tokens_per_sec / 2)
    assert len(r.rank_memory) == 2 and all(m.host_peak_rss_gb and m.host_peak_rss_gb > 0 for m in r.rank_memory)
    assert r.baseline_tokens_per_sec == alone.result.tokens_per_sec and r.baseline_source == 'run 1 of this report, "1 process"'
    assert r.scaling_efficiency == round(r.tokens_per_sec / (2 * alone.result.tokens_per_sec), 4)


def test_a_failing_rank_ends_the_whole_run_promptly(tmp_path: Path) -> None:
    """Rank 1 fails at once; rank 0, asked for a million steps and a 600 s timeout, must be stopped by the launcher,
    not by finishing or by the timeout. The bound is half the timeout, so that a busy machine (slow starts of two
    torch processes) cannot fail it while a hang still does."""
    script = str(ROOT / "tests" / "ddp_rank_fails.py")
    args = ["run", *TINY[:-4], "--batch", "1", "--steps", "1000000", "--dist-timeout", "600", "--out", str(tmp_path)]
    start = time.monotonic()
    proc = subprocess.run(torchrun_command(2, [script, *args]), env=_env(), capture_output=True, text=True, timeout=500)
    assert proc.returncode != 0
    assert time.monotonic() - start < 300
    assert "rank 1 of 2: rank 1 failed on purpose" in proc.stderr
    assert not list(tmp_path.iterdir())  # no report


def test_a_rendezvous_that_cannot_complete_times_out(tmp_path: Path) -> None:
    """Rank 0 of 2 alone: the group cannot form, and --dist-timeout ends the wait with one clear line (well before the
    default 300 s timeout; the bound leaves a busy machine two minutes to start torch)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = _env(RANK="0", WORLD_SIZE="2", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    start = time.monotonic()
    cmd = [sys.executable, "-m", "gptbench", "run", *TINY, "--dist-timeout", "2", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 2 and time.monotonic() - start < 150
    assert "rank 0 of 2: the process group did not form within 2 s (--dist-timeout)" in proc.stderr
    assert not list(tmp_path.iterdir())


def test_the_launcher_forwards_the_options_and_reports_a_failed_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, list[str], str | None]] = []
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(distributed, "launch", lambda n, target: seen.append((n, target, os.environ.get("OMP_NUM_THREADS"))) or 1)
    result = runner.invoke(app, ["run", *TINY, "--no-vocab-pad", "--nproc", "2", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "the 2-process run failed" in result.output and "the failing rank's message is above" in result.output
    (nproc, target, threads), shape = seen[0], ["--device", "cpu", "--model", "tiny", "--seq", "32"]
    assert nproc == 2 and target == ["-m", "gptbench", "run", *shape, "--no-vocab-pad", *TINY[6:], "--out", str(tmp_path)]
    assert threads == str(max(1, torch.get_num_threads() // 2)) and "OMP_NUM_THREADS" not in os.environ  # shared, then put back


def test_bad_multi_process_options_are_one_line_and_exit_2(tmp_path: Path) -> None:
    cases = [
        (["--nproc", "0"], "--nproc 0: give a whole number from 1"),
        (["--scaling"], "add --nproc N"),
        (["--nproc", "2", "--batch", "auto"], "--batch auto searches with one process"),
        (["--nproc", "2", "--scaling", "--baseline-report", "x.json"], "drop --baseline-report, or drop --scaling"),
        (["--nproc", "2", "--dist-timeout", "1", "--baseline-report", str(tmp_path / "none.json")], "none.json"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, ["run", *TINY, *extra, "--out", str(tmp_path)])
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.output and result.output.count("error:") == 1, result.output
    assert not list(tmp_path.iterdir())


def test_devices_that_cannot_take_one_process_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(distributed, "resolve_device", lambda name: torch.device("mps"))
    with pytest.raises(GptbenchError, match="MPS has no torch.distributed backend"):
        check_nproc(2, "mps")
    monkeypatch.setattr(distributed, "resolve_device", lambda name: torch.device("cuda", 0))
    with pytest.raises(GptbenchError, match="this machine has 2 CUDA GPU"):
        check_nproc(4, "cuda", gpus=2)
    assert check_nproc(2, "cuda", gpus=2).type == "cuda"
    with pytest.raises(GptbenchError, match="pass --device cuda"):
        check_nproc(2, "cuda:1", gpus=2)


def test_rank_environment() -> None:
    assert RankEnv.from_environ({}) is None
    assert RankEnv.from_environ({"RANK": "9", "WORLD_SIZE": "16", "LOCAL_RANK": "1"}) == RankEnv(9, 16, 1)
    with pytest.raises(GptbenchError, match="expected whole numbers"):
        RankEnv.from_environ({"RANK": "0", "WORLD_SIZE": "two"})


A100 = Accelerator("cuda", "NVIDIA A100-SXM4-80GB", 8)
SHAPE = ModelShape("124m", 12, 12, 768, 50304, 1024, 124_475_904)


def _run(world: int, tokens_per_sec: float, batch: int = 16) -> Run:
    config = RunConfig(SHAPE, 1024, batch, 1, world, 1024 * batch * world, "bf16", True, "sdpa", True, True, "synthetic")
    return Run(config, RunResult("ok", tokens_per_sec=tokens_per_sec, tokens_per_sec_per_rank=tokens_per_sec / world))


def test_scaling_efficiency_from_a_baseline_report_reaches_estimate(tmp_path: Path) -> None:
    """Known answer: 8 GPUs at 1,000,000 tok/s against one at 150,000 is 1e6 / (8 × 150,000) = 0.8333."""
    one = write_report(Report(Machine(accelerator=A100), [_run(1, 150_000.0)], created="2026-11-01T00:00:00+00:00"), tmp_path)
    eight = _run(8, 1_000_000.0)
    base = find_baseline(one, eight.config, A100)
    assert isinstance(base, Baseline) and base.source == f"{one} run 0"
    attach_scaling(eight, base)
    assert eight.result.scaling_efficiency == 0.8333 and eight.result.baseline_tokens_per_sec == 150_000.0
    with pytest.raises(GptbenchError, match="no ok single-process run of this configuration"):
        find_baseline(one, _run(8, 1.0, batch=32).config, A100)
    with pytest.raises(GptbenchError, match="must come from the same hardware"):
        find_baseline(one, eight.config, Accelerator("cuda", "NVIDIA H100 80GB HBM3", 8))
    report = write_report(Report(Machine(accelerator=A100), [eight], created="2026-11-02T00:00:00+00:00"), tmp_path / "ddp")
    result = runner.invoke(app, ["estimate", "--report", str(report), "--gpus", "16", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["scaling_basis"] == "measured" and data["scaling_efficiency"] == 0.8333
    assert data["tokens_per_sec"] == pytest.approx(1_000_000 / 8 / 0.8333 * 16 * 0.8333)


def test_power_of_rank_0s_gpu_is_scaled_to_every_rank(tmp_path: Path) -> None:
    """A multi-process run's telemetry samples rank 0's GPU alone: 400 W there means 8 × 400 W for 8 ranks."""
    data = Report(Machine(accelerator=A100), [_run(8, 1_000_000.0)], created="2026-11-02T00:00:00+00:00").to_dict()
    data["runs"][0]["result"]["telemetry"] = {"gpus": 1, "power_avg_w": 400.0}
    path = tmp_path / "ddp.json"
    path.write_text(json.dumps(data))
    result = runner.invoke(app, ["estimate", "--report", str(path), "--kwh-price", "0.3", "--json"])
    assert result.exit_code == 0, result.output
    electricity = json.loads(result.stdout)["electricity"]
    assert electricity["power_basis"] == "measured" and electricity["power_w"] == 3200.0


@pytest.mark.gpu
def test_ddp_on_cuda_with_nccl_and_compile(tmp_path: Path) -> None:
    """On a GPU machine: up to two ranks over NCCL, the model compiled inside DDP, one report."""
    n = min(2, torch.cuda.device_count())
    args = ["--device", "cuda", "--model", "tiny", "--steps", "3", "--warmup", "2", "--compile", "--nproc", str(n)]
    proc = subprocess.run(
        [sys.executable, "-m", "gptbench", "run", *args, "--out", str(tmp_path)], env=_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = tmp_path.iterdir()
    run = load_report(path).runs[0]
    assert run.config.world_size == n and run.config.device == "cuda:0" and run.result.status == "ok"
    assert len(run.result.rank_memory) == n and all((m.peak_allocated_gb or 0) > 0 for m in run.result.rank_memory)
