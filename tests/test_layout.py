"""Outputs that fit a terminal: `plan`, `compare`, `estimate` and `run`'s summary rendered at 80, 100 and 120 columns
keep every table row on one line, no line wider than the terminal, and the answers before the table."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console, RenderableType

from gptbench.cloud.plan import PlanRequest, make_plan
from gptbench.views.plan import plan_view, shown

WIDTHS = (80, 100, 120)
ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "reports" / "reference"


def render(renderable: RenderableType, width: int) -> list[str]:
    """What a terminal of `width` columns shows, line by line."""
    console = Console(width=width, file=io.StringIO(), color_system=None, legacy_windows=False)
    console.print(renderable)
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


def table_body(lines: list[str]) -> list[str]:
    """The lines of the first table's rows: after its header rule, up to the blank line that closes it."""
    start = next(i for i, line in enumerate(lines) if line.strip() and set(line.strip()) == {"─"})
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].strip())
    return lines[start + 1 : end]


def assert_fits(lines: list[str], width: int) -> None:
    wide = [line for line in lines if len(line.rstrip()) > width]
    assert not wide, f"{len(wide)} lines wider than {width} columns: {wide[:2]}"


@pytest.mark.parametrize("width", WIDTHS)
def test_plan_answers_first_and_one_line_per_option(width: int, tmp_path: Path) -> None:
    plan = make_plan(PlanRequest(10e9, "fineweb-10b", max_hours=4, budget_usd=100), tmp_path)
    lines = render(plan_view(plan, width), width)
    assert_fits(lines, width)
    body, rows = table_body(lines), shown(plan, False)
    assert len(body) == len(rows) and all(re.match(rf"\s*{i + 1}\s", line) for i, line in zip(rows, body, strict=True))
    first_answer = next(i for i, line in enumerate(lines) if line.startswith("→ cheapest that finishes within 4 h"))
    assert first_answer < lines.index(body[0])
    # only options that answer the question: within the deadline and the budget (no 32 h row, no 4,392 h row)
    assert 0 < len(rows) < len(plan.options)
    assert all(plan.options[i].hours <= 4 and plan.options[i].cost_usd <= 100 for i in rows)  # type: ignore[operator]


@pytest.mark.parametrize("width", WIDTHS)
def test_plan_all_rows_still_one_line_each(width: int, tmp_path: Path) -> None:
    plan = make_plan(PlanRequest(10e9), tmp_path)
    lines = render(plan_view(plan, width, show_all=True), width)
    assert_fits(lines, width)
    assert len(table_body(lines)) == len(plan.options)


def test_plan_without_limits_shows_the_pareto_front_and_a_key_for_the_basis(tmp_path: Path) -> None:
    plan = make_plan(PlanRequest(10e9), tmp_path)
    rows = shown(plan, False)
    assert rows == [i for i, o in enumerate(plan.options) if o.pareto]
    text = " ".join(line.strip() for line in render(plan_view(plan, 80), 80))  # wrapped prose joined again
    assert "C carried" in text and f"{len(rows)} of {len(plan.options)} options shown (--all" in text


def test_piped_output_honours_columns(tmp_path: Path) -> None:
    """Piped (not a terminal), `plan` and `compare` keep to $COLUMNS: 80 here."""
    shutil.copy(REFERENCE / "20261128-232816_vm_amd-epyc.json", tmp_path)
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    for args in (["plan", "--reports-dir", str(tmp_path)], ["compare", str(REFERENCE)]):
        proc = subprocess.run([sys.executable, "-m", "gptbench", *args], env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert_fits(proc.stdout.splitlines(), 80)


def _comparison(paths: list[Path]):  # noqa: ANN202 - pandas is imported by the views only
    from gptbench.views.compare import CompareOptions, compare
    from gptbench.views.load import load_runs

    return compare(load_runs([str(p) for p in paths]), CompareOptions())


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_one_line_per_run_and_whole_words(width: int, tmp_path: Path) -> None:
    from report_fixtures import write_all

    from gptbench.views.compare_table import compare_table

    write_all(tmp_path)
    comparison = _comparison([tmp_path, REFERENCE])
    lines = render(compare_table(comparison, width), width)
    assert_fits(lines, width)
    body = table_body(lines)
    assert len(body) == len(comparison.frame) >= 5
    header = lines[lines.index(body[0]) - 2]
    assert "machine" in header and "tokens/s" in header and "…" not in header  # no header cut or split ("machin/e")
    assert all(not re.search(r"\d…", line) for line in body)  # numbers whole: no `89,2…`


def test_compare_of_one_report_says_one_run() -> None:
    from gptbench.views.compare_table import compare_table

    table = compare_table(_comparison([REFERENCE / "20261128-232816_vm_amd-epyc.json"]))
    assert table.title == "gptbench compare · 1 run from 1 report"


@pytest.mark.parametrize("width", WIDTHS)
def test_run_summary_rows_do_not_wrap_and_show_the_switches(width: int) -> None:
    """Each row of `run`'s summary is one line at 100 columns and more (the config: its four lines); at 80 no line
    is wider than the terminal; a sharded, checkpointed run says so, a batch sized by the GPU's memory too; one step
    is 'over 1 step'."""
    from dataclasses import replace

    from gptbench.reports.store import load_report
    from gptbench.views.summary import summary_table

    for name in ("20261128-232816_vm_amd-epyc.json", "20261204-175913_vm_nvidia-h200_acceptance-default.json"):
        report = load_report(REFERENCE / name)
        run = report.runs[0]
        config = replace(run.config, shard="optimizer", activation_checkpointing=True, micro_batch_basis="micro-batch 64 …")
        run = replace(run, config=config)
        run.result.step_times_s = run.result.step_times_s[:1]
        lines = render(summary_table(report, run), width)
        assert_fits(lines, width)
        text = "\n".join(lines)
        assert "ZeRO-1" in text and "activation checkpointing" in text and "over 1 step " in text.replace("│", " ")
        assert f"batch {run.config.micro_batch} (sized by GPU memory)" in text  # a default batch says where it came from
        continued = [line for line in lines[3:-1] if line.startswith("│  ") or line.startswith("│ " + " " * 8)]
        if width >= 100:
            assert len(continued) == 3, continued  # the config's second to fourth lines (the switches), nothing else


def _gptbench(args: list[str], width: int, cwd: Path) -> list[str]:
    env = {**os.environ, "COLUMNS": str(width), "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "gptbench", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.splitlines()


@pytest.mark.parametrize("width", WIDTHS)
def test_estimate_fits_and_its_assumptions_wrap_under_their_bullet(width: int, tmp_path: Path) -> None:
    lines = _gptbench(["estimate", "--gpu", "h100-sxm", "--reports-dir", str(tmp_path)], width, tmp_path)
    assert_fits(lines, width)
    bullets = [line for line in lines[lines.index("assumptions") :] if line.startswith("  • ")]
    assert len(bullets) >= 5  # each assumption a bullet, its continuation lines indented under it
    table = lines[1 : next(i for i, line in enumerate(lines) if line.startswith("└"))]
    if width >= 100:  # one line per row
        assert all(not line.startswith("│                  │") for line in table), table
    catalog = _gptbench(["estimate", "--catalog", "--reports-dir", str(tmp_path)], width, tmp_path)
    assert_fits(catalog, width)
    assert len(table_body(catalog)) >= 40  # one line per offer (49 in the shipped catalog, older prices aside)
