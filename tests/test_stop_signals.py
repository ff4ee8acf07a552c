"""Issue 28, part 2: a stop signal keeps what was measured. `run` stopped by SIGINT or SIGTERM after warm-up writes
the steps measured so far, status `interrupted`, prints them and exits 130/143; before the first measured step it
says nothing was measured. `--batch auto` keeps its finished candidates. No child process outlives its parent.
The signals are real (os.kill on this process or a child's parent), sent at a chosen step, never after a delay."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from gptbench.bench.harness import measure
from gptbench.bench.step import Trainer
from gptbench.cli import app

runner = CliRunner()
TINY = ["--device", "cpu", "--model", "tiny", "--seq", "8", "--allocator", "system"]
CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


def test_the_harness_keeps_the_steps_before_a_stop_and_drops_the_one_in_flight() -> None:
    calls = []

    def step() -> torch.Tensor:
        calls.append(1)
        if len(calls) == 4:  # warm-up 1, measured 1 and 2 done, the third stopped (Ctrl-C's own KeyboardInterrupt)
            raise KeyboardInterrupt
        return torch.tensor(float(len(calls)))

    try:
        timing = measure(step, lambda: None, warmup_steps=1, steps=10, tokens_per_step=8)
    except KeyboardInterrupt:  # escaping, it would end pytest's whole session
        pytest.fail("the interrupt after two measured steps escaped measure(): the steps measured were lost")
    assert len(timing.step_times_s) == 2 and timing.losses == [1.0, 2.0, 3.0] and timing.interrupted_by == signal.SIGINT
    calls.clear()
    with pytest.raises(KeyboardInterrupt):  # during warm-up: nothing measured, the interrupt goes on
        measure(step, lambda: None, warmup_steps=5, steps=10, tokens_per_step=8)


def signal_at_step(monkeypatch: pytest.MonkeyPatch, signum: int, at: int) -> None:
    """This process receives `signum` during Trainer.step call number `at` (1 = the first warm-up step)."""
    real, calls = Trainer.step, []

    def step(self: Trainer) -> torch.Tensor:
        calls.append(1)
        if len(calls) == at:
            os.kill(os.getpid(), signum)  # the handler `friendly` installed raises Stopped here
        return real(self)

    monkeypatch.setattr(Trainer, "step", step)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_run_stopped_after_warm_up_writes_the_steps_measured_marked_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int
) -> None:
    signal_at_step(monkeypatch, signum, at=4)  # warm-up 1, then measured steps 1 and 2 finish
    result = runner.invoke(app, ["run", *TINY, "--steps", "50", "--warmup", "1", "--out", str(tmp_path), "--json"])
    assert result.exit_code == CODES[signum], result.output
    (path,) = tmp_path.glob("*.json")
    written = json.loads(path.read_text())
    printed = json.loads(result.stdout)
    assert {k: v for k, v in printed.items() if k != "reference"} == written  # --json adds the reference check
    r = written["runs"][0]["result"]
    assert r["status"] == "interrupted" and len(r["step_times_s"]) == 2 and r["tokens_per_sec"] > 0
    assert f"stopped by {signal.Signals(signum).name} after 2 of 50 measured steps" in r["error"]
    assert "interrupted" in result.stderr and "Traceback" not in result.output


def test_run_stopped_in_warm_up_says_nothing_was_measured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    signal_at_step(monkeypatch, signal.SIGTERM, at=1)
    result = runner.invoke(app, ["run", *TINY, "--steps", "5", "--warmup", "2", "--out", str(tmp_path)])
    assert result.exit_code == 143 and "nothing was measured" in result.stderr, result.output
    assert list(tmp_path.iterdir()) == [] and "Traceback" not in result.output


def test_an_interrupted_run_is_labelled_not_taken_as_a_measurement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    signal_at_step(monkeypatch, signal.SIGTERM, at=3)
    runner.invoke(app, ["run", *TINY, "--steps", "50", "--warmup", "1", "--out", str(tmp_path)])
    compared = runner.invoke(app, ["compare", str(tmp_path), "--json"])
    (row,) = json.loads(compared.stdout)["runs"]
    assert row["status"] == "interrupted" and row["relative_speed"] is None
    estimated = runner.invoke(app, ["estimate", "--reports-dir", str(tmp_path)])
    assert estimated.exit_code == 2 and "status interrupted" in estimated.stderr


def test_batch_auto_keeps_the_candidates_that_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_faults import _fake_run

    candidates = []

    def worker(config: Any, *args: Any, **kwargs: Any) -> Any:
        if config.steps > 1:  # a candidate's full run (probes take one step)
            candidates.append(config.micro_batch)
            if len(candidates) == 2:
                os.kill(os.getpid(), signal.SIGTERM)
        return _fake_run(config)

    monkeypatch.setattr("gptbench.studies.autobatch.run_in_subprocess", worker)
    args = ["run", *TINY, "--batch", "auto", "--max-batch", "4", "--memory-limit", "2GB", "--steps", "3"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path), "--json"])
    assert result.exit_code == 143, result.output
    (path,) = tmp_path.glob("*.json")
    runs = json.loads(path.read_text())["runs"]
    assert [r["config"]["micro_batch"] for r in runs] == [4] and "1 candidate run(s) that finished" in result.stderr


def _child_of(parent: int, marker: str, deadline_s: float = 120) -> int:
    """The pid of `parent`'s child whose command line holds `marker`, waiting for it to start."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            for pid in task.read_text().split():
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if marker in cmdline:
                    return int(pid)
        time.sleep(0.2)
    raise AssertionError(f"no child running {marker} under {parent}")


def _gone(pid: int, deadline_s: float = 60) -> bool:
    """Whether `pid` has ended (a zombie left for a reaper counts as ended), waiting up to `deadline_s`."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_worker_never_outlives_its_parent(tmp_path: Path, signum: int) -> None:
    """A sweep's worker measures a run of 100,000 steps; its parent is stopped (SIGTERM) or killed outright (SIGKILL)."""
    args = ["sweep", *TINY, "--batch", "1", "--steps", "100000", "--warmup", "1", "--out", str(tmp_path)]
    parent = subprocess.Popen([sys.executable, "-m", "gptbench", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        child = _child_of(parent.pid, "gptbench.bench.worker")
        parent.send_signal(signum)
        _, stderr = parent.communicate(timeout=120)
        assert parent.returncode == (143 if signum == signal.SIGTERM else -signal.SIGKILL), stderr.decode()[-2000:]
        assert _gone(child), f"worker {child} outlived its parent"
    finally:
        parent.kill()
