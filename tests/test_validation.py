"""How well the projection predicts points it was not fitted on (leave-one-out), and the labels and bands that follow."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest

from gptbench.cloud.calibration import PUBLISHED_FILE, published_points, report_points
from gptbench.cloud.validation import LEAVE_ONE_OUT, LEAVE_ONE_OUT_BOUND, band_factors, evidence_for, leave_one_out
from gptbench.hardware.specs import find_gpu

REPO_REPORTS = Path(__file__).resolve().parent.parent / "reports" / "reference"


@pytest.fixture(scope="module")
def held_out() -> list:
    return leave_one_out(published_points() + report_points(REPO_REPORTS)[0])


def test_leave_one_out_errors_are_within_the_stated_bound(held_out: list) -> None:
    """Each point projected by a model fitted without it lands within LEAVE_ONE_OUT_BOUND of its measurement."""
    for h in held_out:
        assert abs(h.error) <= LEAVE_ONE_OUT_BOUND, (h.name, h.error)


def test_stored_leave_one_out_table_matches_the_data(held_out: list) -> None:
    """The labels and bands `estimate` prints come from this table: it must be the current data's leave-one-out."""
    recomputed = [(h.name, h.gpu, round(h.error, 3)) for h in held_out]
    assert recomputed == [(n, g, pytest.approx(e, abs=0.0015)) for n, g, e in LEAVE_ONE_OUT], (
        "re-run benchmarks/projection_vs_measured.py --fit and update LEAVE_ONE_OUT in gptbench/cloud/validation.py"
    )


def _with_row_changed(tmp_path: Path, name: str, **changes: str) -> Path:
    """A copy of calibration.csv with one row's fields changed."""
    rows = list(csv.DictReader(PUBLISHED_FILE.open(newline="", encoding="utf-8")))
    for row in rows:
        if row["name"] == name:
            row.update(changes)
    path = tmp_path / "calibration.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_a_wrong_calibration_figure_fails_the_leave_one_out(tmp_path: Path) -> None:
    """An 8-GPU node's throughput recorded as one GPU's is projected far outside the bound, and a figure off by 2x
    moves its leave-one-out error away from the stored table (which test_stored_leave_one_out_table... then fails)."""
    node = _with_row_changed(tmp_path, "llmc-8xh100", gpus="1")
    (held,) = leave_one_out(published_points(node), only={"llmc-8xh100"})
    assert abs(held.error) > LEAVE_ONE_OUT_BOUND
    doubled = _with_row_changed(tmp_path, "runpod-l40s-b32", tokens_per_sec=str(2 * 142641))
    (held,) = leave_one_out(published_points(doubled), only={"runpod-l40s-b32"})
    stored = {name: error for name, _, error in LEAVE_ONE_OUT}
    assert abs(held.error - stored["runpod-l40s-b32"]) > 0.3


def test_committed_gpu_reports_are_held_out_too() -> None:
    """Reports measured on real GPUs and committed to reports/ take part in the leave-one-out (CPU reports cannot)."""
    points, skipped = report_points(REPO_REPORTS)
    if not points:
        pytest.skip(f"no GPU report committed in {REPO_REPORTS} ({len(skipped)} report(s) or run(s) without a projection)")
    names = {name for name, _, _ in LEAVE_ONE_OUT}
    assert {p.name for p in points} <= names


def test_labels_say_what_backs_each_gpu() -> None:
    h100 = evidence_for(find_gpu("h100-sxm"))  # two published points (and any committed H100 report)
    assert h100.kind == "validated" and h100.points >= 2
    assert h100.label.startswith("validated: 2 published points") and "on this GPU, leave-one-out error" in h100.label
    with_report = evidence_for(find_gpu("l4"), held_out=(("a.json#0", "l4", 0.1), ("runpod-l4-b16", "l4", 0.2)))
    expected = "validated: 1 published point and 1 gptbench report run on this GPU, leave-one-out error +10% to +20%"
    assert with_report.label == expected
    gh200 = evidence_for(find_gpu("gh200"))  # a Hopper nobody measured
    assert gh200.kind == "same architecture" and "hopper" in gh200.label and "h100-sxm" in gh200.label
    mi300x = evidence_for(find_gpu("mi300x"))
    assert mi300x.kind == "extrapolation" and mi300x.label == "datasheet extrapolation: not validated"
    assert evidence_for(find_gpu("h100-sxm"), held_out=()).kind == "extrapolation"


def test_band_spans_the_leave_one_out_errors() -> None:
    """measured = projected / (1 + error): a +25% error at worst means the slow end is 0.8 x projected."""
    assert band_factors([0.25, -0.2]) == (pytest.approx(0.8), pytest.approx(1.25))
    low, high = evidence_for(find_gpu("l4")).band
    errors = [e for _, _, e in LEAVE_ONE_OUT]
    assert low == pytest.approx(1 / (1 + max(errors))) and high == pytest.approx(1 / (1 + min(errors)))
    assert low < 1 < high


def test_a_gpu_without_architecture_is_an_extrapolation() -> None:
    spec = replace(find_gpu("h200"), name="my-hopper", architecture="")
    assert evidence_for(spec).kind == "extrapolation"
