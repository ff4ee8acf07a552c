"""Issue 28, part 1: writing results never loses a measurement. A write that fails (disk full, read-only or vanished
folder, no permission) at any point is one line naming the file and the OS's reason, leaves no temporary file, and
the result is still printed (the summary, or the JSON with --json); exit 1. Faults come from tests/faults.py; one
test fills a real tmpfs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from faults import ERRNOS, POINTS, Faults, leftovers
from report_fixtures import write_all
from typer.testing import CliRunner

from gptbench.cli import app

runner = CliRunner()
TINY = ["--device", "cpu", "--model", "tiny", "--seq", "8", "--steps", "2", "--warmup", "1"]
REASONS = {name: os.strerror(code) for name, code in ERRNOS.items()}


def _fake_run(config: Any, *args: Any, **kwargs: Any) -> Any:
    """A measured run without training: what is written (or not) is the point here, not the measurement."""
    from gptbench.bench.runner import planned_params, run_config
    from gptbench.reports.schema import Loss, Memory, Run, RunResult

    rate = 1234.5 * config.micro_batch
    result = RunResult(
        tokens_per_sec=rate, tokens_per_sec_p10=rate, tokens_per_sec_p90=rate, step_time_s=1.0, step_times_s=[1.0, 1.0],
        warmup_s=1.0, flops_per_token=1e6, achieved_tflops=rate * 1e-6, memory=Memory(host_peak_rss_gb=0.1),
        loss=Loss(first=5.0, last=4.0, all_finite=True),
    )  # fmt: skip
    return Run(run_config(config, planned_params(config)), result)


@pytest.fixture
def fake_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gptbench.cli.run.measure_with_progress", _fake_run)
    for where in ("gptbench.bench.worker", "gptbench.studies.series", "gptbench.studies.autobatch"):
        monkeypatch.setattr(f"{where}.run_in_subprocess", _fake_run)


def assert_said_and_kept(result: Any, folder: Path, reason: str, code: int = 1) -> None:
    """Exit 1, one error line naming a file under `folder` and the OS's reason, no temporary file left."""
    assert result.exit_code == code, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(folder) in errors[0] and reason in errors[0], result.stderr
    assert "Traceback" not in result.output
    assert leftovers(folder) == []


@pytest.mark.parametrize("point", [p for p in POINTS if p != "replace"])  # a new report is linked, never renamed over
@pytest.mark.parametrize("name", ERRNOS)
def test_run_prints_its_numbers_when_the_report_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_runs: None, point: str, name: str
) -> None:
    out = tmp_path / "reports"
    out.mkdir()
    Faults(monkeypatch, out, point, ERRNOS[name])
    result = runner.invoke(app, ["run", *TINY, "--out", str(out)])
    assert_said_and_kept(result, out, REASONS[name])
    assert "1,234 tok/s" in result.stdout  # the summary, whose numbers survive
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("name", ERRNOS)
def test_run_json_is_printed_when_the_report_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_runs: None, name: str
) -> None:
    Faults(monkeypatch, tmp_path, "write", ERRNOS[name])
    result = runner.invoke(app, ["run", *TINY, "--json", "--out", str(tmp_path)])
    assert_said_and_kept(result, tmp_path, REASONS[name])
    assert json.loads(result.stdout)["runs"][0]["result"]["tokens_per_sec"] == 1234.5


@pytest.mark.parametrize("point", ["write", "replace"])
def test_a_sweep_whose_report_stops_being_written_prints_every_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_runs: None, point: str
) -> None:
    """The first version is written, then the disk fills: the rewrite after each run fails, the runs go on."""
    faults = Faults(monkeypatch, tmp_path, point, ERRNOS["ENOSPC"], after=1 if point == "write" else 0)
    result = runner.invoke(app, ["sweep", *TINY, "--batch", "1,2", "--out", str(tmp_path)])
    assert_said_and_kept(result, tmp_path, REASONS["ENOSPC"])
    assert faults.calls >= 2 and "2,469" in result.stdout and "batch=2" in result.stdout  # both runs in the table


def test_ablate_and_suite_print_their_tables_on_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_runs: None
) -> None:
    Faults(monkeypatch, tmp_path, "write", ERRNOS["ENOSPC"])
    ablate = runner.invoke(app, ["ablate", *TINY, "--no-batch-search", "--out", str(tmp_path)])
    assert_said_and_kept(ablate, tmp_path, REASONS["ENOSPC"])
    assert "optimization ladder" in ablate.stdout

    from gptbench.cli import peak as peak_cli

    monkeypatch.setattr(peak_cli, "peak_in_child", lambda *a, **k: None)  # its own write is the peak test's
    suite = runner.invoke(app, ["suite", *TINY[:-4], "--steps", "2", "--warmup", "1", "--max-batch", "2", "--out", str(tmp_path)])
    assert suite.exit_code == 1, suite.output
    said = [line for line in suite.stderr.splitlines() if line.startswith("error:")]
    assert len(said) == 3 and all(REASONS["ENOSPC"] in line for line in said)  # default, auto batch, ladder
    assert suite.stdout.count("tok/s") >= 2 and "optimization ladder" in suite.stdout and leftovers(tmp_path) == []


def test_peak_and_chapter5_print_their_results_on_a_read_only_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verdict: Path
) -> None:
    Faults(monkeypatch, tmp_path, "create", ERRNOS["EROFS"])
    peak = runner.invoke(app, ["peak", "--device", "cpu", "--budget-s", "0.02", "--out", str(tmp_path)])
    assert_said_and_kept(peak, tmp_path, REASONS["EROFS"])
    assert "TFLOP/s" in peak.stdout and "report:" not in peak.stdout
    text = tmp_path / "short.txt"
    text.write_text(verdict.read_text(encoding="utf-8")[:3000], encoding="utf-8")
    args = ["chapter5", "--device", "cpu", "--model", "book-tiny", "--epochs", "1", "--context", "64", "--text", str(text)]
    chapter5 = runner.invoke(app, [*args, "--json", "--out", str(tmp_path / "reports")])
    assert_said_and_kept(chapter5, tmp_path, REASONS["EROFS"])
    assert json.loads(chapter5.stdout)["runs"][0]["result"]["chapter5"]["steps"] == 5


def test_prepare_keeps_and_prints_the_shards_written_before_the_disk_filled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verdict: Path
) -> None:
    out = tmp_path / "shards"
    Faults(monkeypatch, out, "write", ERRNOS["ENOSPC"], after=2)  # two shards fit, the third does not
    result = runner.invoke(app, ["prepare", str(verdict), "--out", str(out), "--shard-tokens", "1k", "--workers", "1", "--json"])
    assert_said_and_kept(result, out, REASONS["ENOSPC"])
    printed = json.loads(result.stdout)
    assert len(printed["shards"]) == 2 and printed["tokens"] == 2000
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(p).name for p in printed["shards"])


def test_compare_and_plan_exports_on_a_vanished_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reports, exports = tmp_path / "reports", tmp_path / "exports"
    write_all(reports)
    Faults(monkeypatch, exports, "create", ERRNOS["ENOENT"])
    targets = ["--csv", str(exports / "c.csv"), "--markdown", str(exports / "c.md"), "--html", str(exports / "c.html")]
    compare = runner.invoke(app, ["compare", str(reports), *targets])
    assert compare.exit_code == 1 and compare.stderr.count(REASONS["ENOENT"]) == 3, compare.output
    assert "tokens/s" in compare.stdout and "wrote" not in compare.stderr and leftovers(exports) == []
    plan = runner.invoke(app, ["plan", "--reports-dir", str(reports), "--html", str(exports / "plan.html"), "--json"])
    assert_said_and_kept(plan, exports, REASONS["ENOENT"])
    assert json.loads(plan.stdout)["options"]


@pytest.fixture
def full_tmpfs() -> Any:
    """A real 40 kB tmpfs, filled: mounting needs root (and a kernel that lets this container mount)."""
    where = Path(f"/tmp/gptbench-full-{uuid.uuid4().hex[:8]}")
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40k", "tmpfs", str(where)], capture_output=True, text=True)
    if mounted.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'mount failed'}); needs root")
    try:
        with open(where / "filler", "wb", buffering=0) as f:  # unbuffered: close has nothing left to flush
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)
        shutil.rmtree(where, ignore_errors=True)


def test_a_real_run_on_a_full_disk_prints_its_numbers_and_leaves_no_temporary_file(full_tmpfs: Path) -> None:
    out = full_tmpfs / "reports"
    out.mkdir()  # a folder still fits; the report does not
    args = [sys.executable, "-m", "gptbench", "run", *TINY, "--allocator", "system", "--json", "--out", str(out)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "No space left on device" in proc.stderr and str(out) in proc.stderr and "Traceback" not in proc.stderr
    assert json.loads(proc.stdout)["runs"][0]["result"]["tokens_per_sec"] > 0
    assert sorted(p.name for p in full_tmpfs.rglob("*") if p.name != "filler") == ["reports"]
