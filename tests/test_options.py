"""Options a user got wrong before issue 27: each one now refused as one red line with exit code 2, before any work,
or named for what it really did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gptbench.bench.config import BenchConfig, RunOptions, resolve_config
from gptbench.bench.runner import run_config
from gptbench.cli import app
from gptbench.reports.schema import Memory, Run, RunResult
from gptbench.studies import autobatch

runner = CliRunner()
TINY_RUN = ["run", "--device", "cpu", "--model", "tiny", "--allocator", "system"]


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Fakes for the work `run` does (measure, search, launch), each recording that it was reached."""
    reached: list[str] = []

    def fake(name: str) -> Any:
        def reach(*args: Any, **kwargs: Any) -> None:
            reached.append(name)
            raise SystemExit(0)

        return reach

    for name in ("measure_with_progress", "search_batch"):
        monkeypatch.setattr(f"gptbench.cli.run.{name}", fake(name))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.txt").write_text("the verdict")
    (tmp_path / "corpus.jsonl").write_text('{"text": "the verdict"}\n')
    return reached


def _one_line(result: Any, message: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


def test_a_bad_memory_limit_is_refused_without_batch_auto(measured: list[str]) -> None:
    """`run --memory-limit abc` ran a full benchmark: only --batch auto parsed it."""
    _one_line(runner.invoke(app, [*TINY_RUN, "--memory-limit", "abc"]), "--memory-limit 'abc': expected a size")
    _one_line(runner.invoke(app, [*TINY_RUN, "--memory-limit", "2GB"]), "--memory-limit would be ignored")
    _one_line(runner.invoke(app, [*TINY_RUN, "--headroom", "0.5"]), "--headroom would be ignored")
    assert measured == []
    assert runner.invoke(app, [*TINY_RUN, "--memory-limit", "2GB", "--batch", "auto"]).exit_code == 0
    assert measured == ["search_batch"]


def test_a_memory_limit_above_physical_memory_is_refused(measured: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`--batch auto --memory-limit 1TB` on a 23 GB machine searched against a 900 GB bound."""
    monkeypatch.setattr("gptbench.hardware.machine.physical_memory_gb", lambda: 23.0)
    result = runner.invoke(app, [*TINY_RUN, "--batch", "auto", "--memory-limit", "1TB"])
    _one_line(result, "--memory-limit 1TB: more than the 23.0 GB of physical memory")
    assert measured == []


def test_options_of_a_factory_are_refused_without_one(measured: list[str]) -> None:
    _one_line(runner.invoke(app, [*TINY_RUN, "--vocab", "100"]), "--vocab would be ignored")
    _one_line(runner.invoke(app, [*TINY_RUN, "--model-arg", "width=8"]), "--model-arg would be ignored")
    _one_line(runner.invoke(app, [*TINY_RUN, "--dist-timeout", "60"]), "--dist-timeout would be ignored")
    assert measured == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "--budget", "abc"], "Invalid value for '--budget'"),  # was typer's 5-line box
        (["plan", "--budget", "nan"], "--budget nan: give a finite number"),
        (["plan", "--no-such-option"], "No such option: --no-such-option"),
        (["plan", "--budget"], "Option '--budget' requires an argument"),
        (["estimate", "--tokens-per-sec", "inf"], "--tokens-per-sec inf: give a finite number"),
        (["estimate", "--tokens-per-sec", "10", "--power-w", "300"], "--power-w would be ignored"),
        (["estimate", "--tokens-per-sec", "10", "--run", "1"], "--run would be ignored"),
        (["estimate", "--tokens-per-sec", "10", "--price-per", "instance"], "--price-per would be ignored"),
        (["plan", "--force"], "--force would be ignored: it applies only with --html"),
        (["compare", "x.json", "--force"], "--force would be ignored"),
        (["prepare", "corpus.txt", "--column", "body"], "--column would be ignored: it applies only with parquet or jsonl"),
        (["prepare", "corpus.jsonl", "--split-on", "x"], "--split-on would be ignored: it applies only with text-file"),
        (["plan", "--tokens", "1e309"], "give a finite count of at least 1 token"),  # was an OverflowError traceback
        (["compare"], "Missing argument"),
        (["no-such-command"], "No such command 'no-such-command'"),
        (["run", "--seed", str(2**64)], "--seed 18446744073709551616: give a whole number"),  # was an error after the run
        (["peak", "--budget-s", "inf"], "--budget-s inf: give a finite number"),  # measured forever
        (["doctor", "--device", "gpu"], "--device gpu: choose one of all, cuda, mps, cpu"),
    ],
)
def test_bad_input_on_any_command_is_one_red_line(args: list[str], message: str, measured: list[str]) -> None:
    _one_line(runner.invoke(app, args), message)


def test_doctor_knows_the_same_device_kinds_as_its_library() -> None:
    from gptbench.cli.doctor import DEVICE_KINDS
    from gptbench.doctor.system import DEVICE_KINDS as LIBRARY

    assert DEVICE_KINDS == LIBRARY


TINY = resolve_config(RunOptions(device="cpu", model="tiny", seq_len=16, steps=1, warmup_steps=1))


def _worker(step_time_s: float) -> Any:
    """A stand-in for the probe and candidate processes: every batch fits in 1 GB, each step takes `step_time_s`."""

    def run(config: BenchConfig, *args: Any, **kwargs: Any) -> Run:
        memory = Memory(host_peak_rss_gb=1.0)
        result = RunResult("ok", None, 1000.0, step_times_s=[step_time_s], memory=memory)
        return Run(run_config(config, 1), result)

    return run


def test_a_search_stopped_by_the_step_limit_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch 1 was labelled "largest that fits" although the probe step limit, not memory, stopped the search."""
    monkeypatch.setattr(autobatch, "run_in_subprocess", _worker(step_time_s=12.0))
    found = autobatch.auto_batch(TINY, memory_limit_gb=20.0, headroom=0.0, max_batch=64, step_limit_s=10.0)
    assert found.largest == 1 and found.runs[0].name == "batch 1 (largest tried: its step took 12.0 s, past the probe step limit)"
    monkeypatch.setattr(autobatch, "run_in_subprocess", _worker(step_time_s=0.1))
    found = autobatch.auto_batch(TINY, memory_limit_gb=20.0, headroom=0.0, max_batch=4, step_limit_s=10.0)
    assert found.largest == 4 and found.runs[0].name == "batch 4 (largest tried: --max-batch 4)"
