"""benchmarks/gpu_session.sh's frontier modes (issue 29) on the CPU: the plan fits the session's budget and runs
nothing in a dry run, and without a GPU the script stops at once with one line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SESSION = ROOT / "benchmarks" / "gpu_session.sh"
BUDGET_S = 450  # gpu_session.sh's SESSION_BUDGET_S default: a 15-minute device budget keeps room for a rerun


def _session(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    out = tmp_path / "out"
    return subprocess.run(
        ["bash", str(SESSION), str(out)], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )


@pytest.mark.parametrize(
    ("mode", "steps"),
    [
        ("frontier", ["b64-standard", "b64-chunked", "b64-chunked-fp8", "b64-chunked-cudagraphs", "side-by-side"]),
        ("frontier-ablate", ["b64-liger", "ablate"]),
    ],
)
def test_a_dry_run_prints_a_plan_that_fits_the_budget_and_runs_nothing(tmp_path: Path, mode: str, steps: list[str]) -> None:
    proc = _session(tmp_path, MODE=mode, DRY_RUN="1")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("\t") for line in proc.stdout.strip().splitlines()[1:]]
    assert [r[0] for r in rows][1 : len(steps) + 1] == steps and rows[0][0] == "wheels"
    assert sum(int(r[1]) for r in rows) <= BUDGET_S
    assert all("--device cuda" in r[2] for r in rows[1:])
    assert not (tmp_path / "out").exists()  # nothing ran, nothing was written


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU answer")
def test_without_a_gpu_the_frontier_stops_at_once_in_one_line(tmp_path: Path) -> None:
    proc = _session(tmp_path, MODE="frontier")
    assert proc.returncode == 2 and proc.stdout.strip().splitlines() == [
        "no CUDA GPU here: MODE=frontier measures on one (DRY_RUN=1 prints its plan)"
    ]
    assert not (tmp_path / "out").exists()


def test_an_unknown_mode_is_refused(tmp_path: Path) -> None:
    proc = _session(tmp_path, MODE="fast")
    assert proc.returncode == 2 and "MODE=fast: choose acceptance (the default), frontier or frontier-ablate" in proc.stdout
