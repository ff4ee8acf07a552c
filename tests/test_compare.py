from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from report_fixtures import a100, laptop, rtx3090, write_all
from typer.testing import CliRunner

from gptbench.cli import app
from gptbench.cloud.prices import PRICES_ENV, cheapest_price_per_gpu_hour
from gptbench.errors import GptbenchError
from gptbench.reports.store import write_report
from gptbench.views import compare as compare_module
from gptbench.views import load
from gptbench.views.compare import CompareOptions, compare, parse_prices
from gptbench.views.export import to_markdown
from gptbench.views.load import load_runs, records

runner = CliRunner()
CATALOG = """provider,instance,gpu,gpus,price_per_hour_usd,price_basis,observed,source
big,8x A100,a100-sxm4-80gb,8,12.0,on-demand,2025-01-02,test
big,8x A100,a100-sxm4-80gb,8,16.0,on-demand,2026-01-02,test
small,1x A100,a100-sxm4-80gb,1,2.5,on-demand,2026-01-01,test
small,1x RTX 3090,rtx3090,1,0.4,on-demand,2026-01-03,test
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A laptop CPU (seq 256, fp32), an RTX 3090 and an A100 (seq 1024, bf16; the A100 also has an OOM run)."""
    write_all(tmp_path / "reports")
    return tmp_path / "reports"


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal wide enough for every column (narrower ones drop columns: tests/test_layout.py)."""
    from gptbench.cli.common import out

    monkeypatch.setattr(out, "width", 250)


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "prices.csv"
    path.write_text(CATALOG)
    monkeypatch.setenv(PRICES_ENV, str(path))
    return path


def by_host(comparison: compare_module.Comparison) -> dict[str, dict]:
    """The finished run of each machine, by hostname."""
    return {row["hostname"]: row for row in records(comparison.frame) if row["status"] == "ok"}


def test_bad_files_are_named_and_skipped_while_good_reports_still_load(folder: Path) -> None:
    (folder / "notes.json").write_text("not json at all")
    (folder / "truncated.json").write_text(json.dumps(rtx3090().to_dict())[:200])
    (folder / "future.json").write_text(json.dumps({**rtx3090().to_dict(), "schema": "gptbench.report/9"}))
    (folder / "README.md").write_text("a folder's other files are not reports")
    loaded = load_runs([folder, folder / "future.json", folder / "missing.json"])
    assert sorted(loaded.frame["hostname"]) == ["cloud", "cloud", "home", "laptop"] and loaded.files == 3
    text = "\n".join(loaded.warnings)
    assert len(loaded.warnings) == 4  # future.json is named twice but read once; README.md is not a report file
    for name, why in [
        ("notes.json", "not valid JSON"),
        ("truncated.json", "truncated"),
        ("future.json", "unknown report schema"),
    ]:
        assert any(name in w and why in w for w in loaded.warnings), (name, text)
    assert "missing.json: no such file or folder" in text


def test_globs_the_shell_did_not_expand_and_empty_folders(tmp_path: Path, folder: Path) -> None:
    (tmp_path / "empty").mkdir()
    loaded = load_runs([str(folder / "*_home_*.json"), str(tmp_path / "nothing*.json"), tmp_path / "empty"])
    assert list(loaded.frame["hostname"]) == ["home"]
    assert [w.split(": ")[1] for w in loaded.warnings] == ["no file matches this pattern", "no .json reports in this folder"]


@pytest.mark.parametrize("make", ["empty", "bad"])
def test_nothing_readable_is_exit_2_with_a_clear_line(tmp_path: Path, make: str) -> None:
    if make == "bad":
        (tmp_path / "broken.json").write_text('{"schema": "gptbench.report/1", "machine": {}, "runs": [')
    result = runner.invoke(app, ["compare", str(tmp_path)])
    assert result.exit_code == 2
    assert "nothing to compare: no readable gptbench report" in result.stderr
    assert ("broken.json" if make == "bad" else "no .json reports in this folder") in result.stderr
    assert "Traceback" not in result.output


def test_known_answers_relative_speed_money_and_epoch_hours(folder: Path) -> None:
    prices = parse_prices(["rtx 3090=0.5", "2.0"])  # a NAME= rule wins over the catch-all
    result = compare(load_runs([folder]), CompareOptions(baseline="home", prices=prices))
    rows = by_host(result)
    home, cloud = rows["home"], rows["cloud"]
    assert home["relative_speed"] == 1.0 and cloud["relative_speed"] == pytest.approx(2.5)
    assert rows["laptop"]["relative_speed"] == pytest.approx(950 / 60_000)
    assert home["price_per_gpu_hour_usd"] == 0.5 and home["price_source"] == "--price rtx 3090=0.5"
    assert home["usd_per_billion_tokens"] == pytest.approx(0.5 / (60_000 * 3600) * 1e9)  # $2.31
    assert home["fineweb_epoch_hours"] == pytest.approx(10e9 / 60_000 / 3600)  # 46.3 h
    assert home["fineweb_epoch_usd"] == pytest.approx(0.5 * 10e9 / 60_000 / 3600)
    assert cloud["price_per_gpu_hour_usd"] == 2.0 and cloud["usd_per_billion_tokens"] == pytest.approx(2.0 / 0.54)
    assert result.baseline.startswith("1.00× = --baseline home: home · NVIDIA GeForce RTX 3090")


def test_default_baseline_is_the_slowest_finished_run(folder: Path) -> None:
    rows = by_host(compare(load_runs([folder]), CompareOptions()))
    assert rows["laptop"]["relative_speed"] == 1.0 and rows["cloud"]["relative_speed"] == pytest.approx(150_000 / 950)


def test_catalog_price_is_the_cheapest_per_gpu_hour(catalog: Path, folder: Path) -> None:
    # 16 / 8 GPUs < 2.5 for one; the older $12 observation of the same instance is superseded, not cheapest
    assert cheapest_price_per_gpu_hour("a100-sxm4-80gb") == (2.0, "big 8x A100", "2026-01-02")
    assert cheapest_price_per_gpu_hour("mi300x") is None
    result = compare(load_runs([folder]), CompareOptions())
    rows = by_host(result)
    assert rows["cloud"]["price_per_gpu_hour_usd"] == 2.0 and "big 8x A100, observed 2026-01-02" in rows["cloud"]["price_source"]
    assert rows["home"]["price_per_gpu_hour_usd"] == 0.4
    assert rows["laptop"]["usd_per_billion_tokens"] is None  # a CPU has no catalog price: n/a, not $0
    assert any(note.startswith("no price for laptop") for note in result.price_notes)


def test_differing_fields_are_named(folder: Path) -> None:
    differences = compare(load_runs([folder]), CompareOptions()).differences
    assert differences == (
        "seq_len (256, 1024)",
        "batch (micro_batch×grad_accum×world_size) (1×1×1, 16×1×1)",
        "dtype (fp32, bf16)",
    )


def test_like_for_like_runs_have_no_warning(tmp_path: Path) -> None:
    write_report(rtx3090(), tmp_path)
    write_report(a100(), tmp_path)  # its OOM run at batch 64 has no numbers, so it does not count as a difference
    assert compare(load_runs([tmp_path]), CompareOptions()).differences == ()


def test_group_lines_up_identical_configurations_each_with_its_own_baseline(folder: Path) -> None:
    result = compare(load_runs([folder]), CompareOptions(group=True, sort="tokens_per_sec"))
    table = [(row["group"], row["hostname"], row["status"], row["relative_speed"]) for row in records(result.frame)]
    assert table == [(1, "cloud", "ok", 2.5), (1, "home", "ok", 1.0), (2, "laptop", "ok", 1.0), (3, "cloud", "oom", None)]


def test_sort_puts_the_better_end_first_and_failed_runs_last(folder: Path) -> None:
    frame = compare(load_runs([folder]), CompareOptions(sort="tokens_per_sec")).frame
    assert list(frame["hostname"]) == ["cloud", "home", "laptop", "cloud"] and frame["status"].iloc[-1] == "oom"
    frame = compare(load_runs([folder]), CompareOptions(sort="fineweb_epoch_hours")).frame
    assert list(frame["hostname"])[:3] == ["cloud", "home", "laptop"]


def test_failed_runs_show_their_status_not_zero_speed(folder: Path, wide: None) -> None:
    result = runner.invoke(app, ["compare", str(folder)])
    assert result.exit_code == 0, result.output
    (oom,) = [line for line in result.stdout.splitlines() if "1024×64×1×1" in line]
    assert "OOM" in oom and " 0 " not in oom
    assert "run 1: oom: CUDA out of memory" in result.stdout
    data = json.loads(runner.invoke(app, ["compare", str(folder), "--json"]).stdout)
    (failed,) = [run for run in data["runs"] if run["status"] != "ok"]
    assert failed["status"] == "oom" and failed["tokens_per_sec"] is None and failed["relative_speed"] is None


def test_table_shows_every_column_and_the_warning(folder: Path, wide: None) -> None:
    result = runner.invoke(app, ["compare", str(folder), "--price", "laptop=0.1"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "these runs differ in seq_len (256, 1024)" in out.replace("\n", " ")
    for text in ("tokens/s", "vs baseline", "MFU", "peak memory", "$ / 1B tokens", "FineWeb-10B epoch"):
        assert text in out, text
    (home,) = [line for line in out.splitlines() if "RTX 3090" in line and "×" in line and "=" not in line]
    for cell in ("home", "1024×16×1×1", "bf16 compiled sdpa", "60,000", "63.16×", "42.0%", "18.20 GB", "46.3 h"):
        assert cell in home, cell


def test_json_for_scripts(folder: Path) -> None:
    result = runner.invoke(app, ["compare", str(folder), "--json", "--baseline", str(next(folder.glob("*home*")))])
    data = json.loads(result.stdout)
    assert data["schema"] == "gptbench.compare/1" and len(data["runs"]) == 4
    assert data["differences"][0] == "seq_len (256, 1024)"
    home = next(run for run in data["runs"] if run["hostname"] == "home")
    assert home["relative_speed"] == 1.0 and home["seq_len"] == 1024 and home["compile"] is True


def test_markdown_is_a_pipe_table_with_the_warning_above(folder: Path) -> None:
    report = laptop()
    report.label = "a|b"  # a pipe in a cell must not split it
    write_report(report, folder)
    text = to_markdown(compare(load_runs([folder]), CompareOptions()))
    lines = text.splitlines()
    assert lines[0].startswith("> **Not like for like:** these runs differ in seq_len")
    table = [line for line in lines if line.startswith("| ")]
    assert len(table) == 2 + 5 and all(line.count(" | ") == 13 for line in table)
    assert table[1] == "| --- | --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    assert "laptop (a\\|b)" in text


def test_exports_never_overwrite_without_force(tmp_path: Path, folder: Path) -> None:
    csv, md = tmp_path / "out.csv", tmp_path / "out.md"
    csv.write_text("mine")
    result = runner.invoke(app, ["compare", str(folder), "--csv", str(csv), "--markdown", str(md)])
    assert result.exit_code == 2 and "out.csv: the file already exists; pass --force" in result.stderr
    assert csv.read_text() == "mine" and not md.exists()  # checked before anything is written
    result = runner.invoke(app, ["compare", str(folder), "--csv", str(csv), "--markdown", str(md), "--force"])
    assert result.exit_code == 0, result.output
    assert csv.read_text().startswith("hostname,accelerator,model,seq_len") and md.read_text().startswith("> **Not like")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.md", "reports"]  # no temp files left behind


def test_same_file_for_two_exports_is_refused(tmp_path: Path, folder: Path) -> None:
    out = str(tmp_path / "x.txt")
    result = runner.invoke(app, ["compare", str(folder), "--csv", out, "--markdown", out])
    assert result.exit_code == 2 and "the same file as --csv" in result.stderr and not Path(out).exists()


def test_html_is_self_contained(tmp_path: Path, folder: Path) -> None:
    pytest.importorskip("matplotlib")
    page = tmp_path / "page.html"
    result = runner.invoke(app, ["compare", str(folder), "--html", str(page)])
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert text.count("<svg") == 1 and "<table>" in text and "Not like for like" in text
    for needle in ("<script", "<link", "<img", "<iframe", "@import", "https://"):  # nothing fetched when it is viewed
        assert needle not in text, needle
    assert not re.findall(r"(?:href|src)\s*=\s*[\"'](?!#)|url\((?!#)", text)  # references point inside the page only


def test_html_without_matplotlib_is_one_line_and_exit_2(tmp_path: Path, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    result = runner.invoke(app, ["compare", str(folder), "--html", str(tmp_path / "p.html")])
    assert result.exit_code == 2 and "needs matplotlib, which is not installed: pip install matplotlib" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "p.html").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--price", "cheap"], "--price 'cheap': expected USD per GPU-hour"),
        (["--price", "-1"], "--price '-1': expected USD per GPU-hour"),
        (["--price", "inf"], "--price 'inf': expected USD per GPU-hour"),
        (["--price", "=3"], "--price '=3': expected"),
        (["--price", "1", "--price", "2"], "--price without NAME= given twice"),
        (["--price", "h100=2"], "no run's machine, accelerator, label or GPU contains that name"),
        (["--baseline", "nope"], "--baseline nope: not among the compared reports"),
        (["--sort", "speed"], "--sort 'speed': no such column; sort by one of tokens_per_sec"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(folder: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["compare", str(folder), *args])
    assert result.exit_code == 2 and message in result.stderr, result.output


def test_a_baseline_whose_runs_all_failed_is_refused(tmp_path: Path) -> None:
    report = a100()
    report.runs = report.runs[1:]
    write_report(report, tmp_path)
    write_report(rtx3090(), tmp_path)
    with pytest.raises(GptbenchError, match="--baseline cloud: none of its runs finished \\(status oom\\)"):
        compare(load_runs([tmp_path]), CompareOptions(baseline="cloud"))


def test_compare_never_imports_torch_and_other_commands_never_import_pandas(folder: Path) -> None:
    cmd = [sys.executable, "-X", "importtime", "-m", "gptbench", "compare", str(folder)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert "pandas" in imported and not [m for m in imported if m.split(".")[0] == "torch"]
    check = "import sys, gptbench.cli; assert 'pandas' not in sys.modules and 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", check], timeout=60).returncode == 0


def test_a_new_measurement_is_one_column_entry(folder: Path, monkeypatch: pytest.MonkeyPatch, wide: None) -> None:
    """Issue 7's telemetry (watts) will be one Column in COLUMNS; it then shows in the table, Markdown, CSV and JSON."""
    watts = load.Column("avg_power_w", lambda s: 250.0 if s.report.machine.accelerator.kind == "cuda" else None, "watts")
    monkeypatch.setattr(load, "COLUMNS", (*load.COLUMNS[:6], watts, *load.COLUMNS[6:]))
    table = runner.invoke(app, ["compare", str(folder)]).stdout
    (home,) = [line for line in table.splitlines() if "RTX 3090" in line and "×" in line and "=" not in line]
    assert " watts " in table and " 250.0 " in home
    comparison = compare(load_runs([folder]), CompareOptions())
    assert "| watts |" in to_markdown(comparison) and "avg_power_w" in comparison.frame.to_csv(index=False)
    data = json.loads(runner.invoke(app, ["compare", str(folder), "--json"]).stdout)
    assert {run["hostname"]: run["avg_power_w"] for run in data["runs"]} == {"laptop": None, "home": 250.0, "cloud": 250.0}
