"""Issue 28, part 4: a folder with one bad report still works. A truncated, foreign or future-schema file in a reports
folder is skipped with a one-line warning naming it by `estimate`, `compare` and `plan`; a bad file named with
--report is an error (exit 2). `compare` warns for named files too: `compare reports/*.json` names every file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from report_fixtures import rtx3090
from typer.testing import CliRunner

from gptbench.cli import app
from gptbench.reports.store import write_report

runner = CliRunner()
BAD = {
    "truncated.json": (lambda: json.dumps(rtx3090().to_dict())[:200], "truncated"),
    "foreign.json": (lambda: json.dumps({"name": "not ours"}), "not a gptbench report"),
    "future.json": (lambda: json.dumps({**rtx3090().to_dict(), "schema": "gptbench.report/9"}), "unknown report schema"),
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """One good report (an RTX 3090's), then the three bad files, written later: the newest file is a bad one."""
    good = write_report(rtx3090(), tmp_path)
    os.utime(good, (1_000_000_000, 1_000_000_000))
    for name, (text, _) in BAD.items():
        (tmp_path / name).write_text(text())
    return tmp_path


def warned(stderr: str) -> dict[str, str]:
    lines = [line for line in stderr.splitlines() if line.startswith("warning:")]
    return {name: line for line in lines for name in BAD if name in line}


@pytest.mark.parametrize(
    "args",
    [
        ["estimate", "--json"],  # the newest report: the good one, under the bad files
        ["estimate", "--gpu", "rtx-3090", "--json"],  # the measurement of that GPU
        ["estimate", "--catalog", "--json"],
        ["plan", "--json"],
        ["compare", "--json"],
    ],
)
def test_each_bad_file_is_one_warning_and_the_good_report_is_used(folder: Path, args: list[str]) -> None:
    where = [str(folder)] if args[0] == "compare" else ["--reports-dir", str(folder)]
    result = runner.invoke(app, [*args, *where])
    assert result.exit_code == 0, result.output
    said = warned(result.stderr)
    assert set(said) == set(BAD), result.stderr
    for name, (_, why) in BAD.items():
        assert why in said[name] and "skipped" in said[name]
    printed = json.dumps(json.loads(result.stdout))
    if args[0] != "compare":  # compare's JSON repeats its warnings; elsewhere a skipped file leaves no trace
        assert "truncated.json" not in printed and "future.json" not in printed and "foreign.json" not in printed
    if args[:2] == ["estimate", "--json"]:
        assert json.loads(result.stdout)["throughput"]["tokens_per_sec"] == 60_000.0


@pytest.mark.parametrize("name", BAD)
def test_a_bad_file_named_with_report_is_an_error(folder: Path, name: str) -> None:
    result = runner.invoke(app, ["estimate", "--report", str(folder / name)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and BAD[name][1] in result.stderr, result.output
