from __future__ import annotations

import json
from pathlib import Path

import pytest

from gptbench.errors import GptbenchError
from gptbench.reports.schema import SCHEMA, Accelerator, Machine, ModelShape, Report, Run, RunConfig, RunResult
from gptbench.reports.store import ReportFile, load_report, write_report


def make_report(label: str | None = "a b/c", tokens_per_sec: float = 1000.0) -> Report:
    shape = ModelShape("tiny", 2, 2, 64, 50304, 128, 3_327_744)
    config = RunConfig(shape, 128, 1, 1, 1, 128, "fp32", False, "sdpa", True, False, "synthetic")
    machine = Machine(hostname="box", accelerator=Accelerator(kind="cuda", name="NVIDIA H200", count=1))
    result = RunResult(tokens_per_sec=tokens_per_sec, step_times_s=[0.128, 0.125])
    return Report(machine=machine, runs=[Run(config, result)], label=label, created="2026-11-28T10:00:00+00:00")


def test_round_trip_is_lossless(tmp_path: Path) -> None:
    report = make_report()
    path = write_report(report, tmp_path)
    assert load_report(path) == report
    data = json.loads(path.read_text())
    assert list(data)[0] == "schema" and data["schema"] == SCHEMA


def test_names_are_readable_and_never_overwrite(tmp_path: Path) -> None:
    first = write_report(make_report(), tmp_path)
    second = write_report(make_report(tokens_per_sec=2.0), tmp_path)
    assert first.name == "20261128-100000_box_nvidia-h200_a-b-c.json"
    assert second.name == "20261128-100000_box_nvidia-h200_a-b-c-2.json"
    assert load_report(first).runs[0].result.tokens_per_sec == 1000.0
    assert {p.name for p in tmp_path.iterdir()} == {first.name, second.name}  # no temp files left


def test_report_file_update_replaces_its_own_file(tmp_path: Path) -> None:
    report = make_report(label=None)
    file = ReportFile(tmp_path, report)
    report.runs.append(report.runs[0])
    file.update(report)
    assert len(load_report(file.path).runs) == 2
    assert len(list(tmp_path.iterdir())) == 1


def test_unknown_fields_are_ignored_within_a_schema(tmp_path: Path) -> None:
    data = make_report().to_dict()
    data["future_field"] = 1
    data["runs"][0]["result"]["telemetry_x"] = {"w": 1}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    assert load_report(path).runs[0].result.tokens_per_sec == 1000.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"schema": "gptbench.report/1", "machine": {}, "runs": [', "not valid JSON"),
        ("[1, 2]", "not a gptbench report"),
        ('{"schema": "gptbench.report/99", "machine": {}}', "unknown report schema 'gptbench.report/99'"),
        ('{"schema": "gptbench.report/1", "machine": {}, "runs": [{"config": 3}]}', "malformed"),
    ],
)
def test_bad_files_are_named_in_the_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(GptbenchError, match=message) as info:
        load_report(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GptbenchError, match="no such report file"):
        load_report(tmp_path / "nope.json")


def test_reports_without_the_book_switches_load_as_gpt2(tmp_path: Path) -> None:
    data = make_report().to_dict()
    for key in ("tie_head", "qkv_bias", "dropout"):
        del data["runs"][0]["config"]["model"][key]
    shape = Report.from_dict(data).runs[0].config.model
    assert (shape.tie_head, shape.qkv_bias, shape.dropout) == (True, True, 0.0)
