"""The bands of the estimate's order are measured: held-out transfers between configurations on one GPU, and GPUs
held out whole with their sources, recomputed here and compared with the tables stored in predict/holdout.py."""

from __future__ import annotations

import math

import pytest

from gptbench.predict.holdout import (
    GPUS_HELD_OUT,
    TRANSFERS,
    gpu_width,
    gpus_held_out,
    transfer_width,
    transfers,
)
from gptbench.predict.reference import reference_points


@pytest.fixture(scope="module")
def points() -> list:
    return list(reference_points())


def test_the_stored_transfer_table_is_what_the_reference_set_gives_today(points: list) -> None:
    fresh = transfers(points)
    assert [(t.start, t.target, t.unaligned) for t in fresh] == [(t.start, t.target, t.unaligned) for t in TRANSFERS]
    for new, stored in zip(fresh, TRANSFERS, strict=True):
        assert new.error == pytest.approx(stored.error, abs=0.002), (new, "rerun projection_vs_measured.py --holdout")
    assert {t.gpu for t in TRANSFERS} == {"a100-sxm4-40gb", "h200"}  # the book's A100 rows and the three H200 runs


def test_the_stored_gpu_table_holds_out_every_gpu_with_its_sources(points: list) -> None:
    fresh = gpus_held_out(points)
    assert [(g.point, g.gpu) for g in fresh] == [(g.point, g.gpu) for g in GPUS_HELD_OUT]
    for new, stored in zip(fresh, GPUS_HELD_OUT, strict=True):
        assert new.error == pytest.approx(stored.error, abs=0.002), (new, "rerun projection_vs_measured.py --holdout")
    assert len(GPUS_HELD_OUT) == len(points)


def test_carrying_a_measurement_beats_projecting_a_gpu_nobody_measured() -> None:
    """The order's point: a transfer on a measured GPU is held out tighter than the bare model on an unmeasured one,
    and a transfer across the vocabulary's alignment (the 0.33 factor) is no tighter than one within it."""
    assert transfer_width(False) < transfer_width(True) < gpu_width()
    assert math.exp(gpu_width()) == pytest.approx(1.72, abs=0.01)  # the H100 NVL, held out with its source
