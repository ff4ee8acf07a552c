"""The HTML export seen by a real browser: headless Chromium renders the page and the screenshot must show the bars;
and a chart with nothing to draw is left out of the page, with the line that says why."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from report_fixtures import write_all

from gptbench.views.compare import CompareOptions, compare, parse_prices
from gptbench.views.export import to_html
from gptbench.views.load import load_runs

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Chromium (apt-get install chromium)")
TAB10 = {"blue": (31, 119, 180), "orange": (255, 127, 14), "green": (44, 160, 44)}  # the bars: one colour per machine


def screenshot(page: Path, png: Path, profile: Path) -> None:
    """Render `page` offline in headless Chromium, as root in a container would, into `png`."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync"]
    flags += ["--disable-background-networking", "--disable-component-update", f"--user-data-dir={profile}"]
    cmd = [CHROMIUM, *flags, f"--screenshot={png}", "--window-size=1280,1400", page.as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120, check=True)


def colour_pixels(png: Path) -> dict[str, int]:
    """How many pixels of the screenshot have each bar colour."""
    image = pytest.importorskip("PIL.Image")  # comes with matplotlib
    counts = dict.fromkeys(TAB10, 0)
    for n, colour in image.open(png).convert("RGB").getcolors(maxcolors=1 << 24):
        for name, rgb in TAB10.items():
            if all(abs(a - b) <= 4 for a, b in zip(colour, rgb, strict=True)):
                counts[name] += n
    return counts


@needs_chromium
def test_the_screenshot_shows_a_bar_per_machine_in_both_charts(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    image = pytest.importorskip("PIL.Image")  # comes with matplotlib
    write_all(tmp_path / "reports")
    comparison = compare(load_runs([tmp_path / "reports"]), CompareOptions(prices=parse_prices(["laptop=0.05"])))
    page = tmp_path / "compare.html"
    page.write_text(to_html(comparison), encoding="utf-8")
    png = tmp_path / "compare.png"
    screenshot(page, png, tmp_path / "profile")
    counts = colour_pixels(png)
    # three machines, each a bar in both charts (the laptop priced with --price): thousands of pixels per colour;
    # a page whose chart failed to draw has none of these colours at all
    assert all(n > 2000 for n in counts.values()), counts
    pixels = image.open(png).convert("RGB")
    width, height = pixels.size
    non_white = sum(n for n, colour in pixels.getcolors(maxcolors=1 << 24) if sum(colour) < 720)
    assert non_white > 0.03 * width * height


def unpriced_laptop_page(tmp_path: Path) -> str:
    """The page for the laptop's report alone: a CPU has no catalog price, and no --price is given."""
    pytest.importorskip("matplotlib")
    paths = write_all(tmp_path / "reports")
    comparison = compare(load_runs([paths["laptop"]]), CompareOptions())
    assert comparison.frame["fineweb_epoch_usd"].isna().all()  # the premise: nothing to draw in $
    return to_html(comparison)


def test_a_chart_with_no_data_is_left_out_with_the_reason(tmp_path: Path) -> None:
    page = unpriced_laptop_page(tmp_path)
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert 'id="axes_1"' in svg and 'id="axes_2"' not in svg  # the throughput chart alone, no empty axes
    assert page.count("No chart of $ per FineWeb-10B epoch: no run has a price (pass --price 1.29") == 1


@needs_chromium
def test_the_screenshot_of_an_unpriced_run_shows_its_one_chart(tmp_path: Path) -> None:
    page = tmp_path / "compare.html"
    page.write_text(unpriced_laptop_page(tmp_path), encoding="utf-8")
    png = tmp_path / "compare.png"
    screenshot(page, png, tmp_path / "profile")
    counts = colour_pixels(png)
    assert counts["blue"] > 2000 and counts["orange"] == counts["green"] == 0, counts  # one machine, one bar


@pytest.mark.parametrize("limits", [{}, {"max_hours": 4.0}, {"max_hours": 4.0, "budget_usd": 30.0}])
def test_plan_chart_labels_overlap_none_and_are_whole(limits: dict, tmp_path: Path) -> None:
    """Every Pareto point of `plan --html` is labelled with its row, GPUs and the whole offer (the old labels were cut
    at 34 characters, 'runpod 1x B200 180GB (Community Cl'), no two labels overlap, and every label is inside the axes."""
    pytest.importorskip("matplotlib")
    from matplotlib.text import Text

    from gptbench.cloud.plan import PlanRequest, make_plan
    from gptbench.views.plan_html import chart_figure

    plan = make_plan(PlanRequest(10e9, **limits), tmp_path)
    fig = chart_figure(plan)
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.texts if t.get_text().startswith("#")]
    front = [(i, o) for i, o in enumerate(plan.options, start=1) if o.pareto]
    assert len(labels) == len(front) >= 3
    for note in labels:
        note.update_positions(renderer)  # type: ignore[attr-defined]
    boxes = [Text.get_window_extent(t, renderer) for t in labels]
    inside = ax.get_window_extent(renderer)
    for n, box in enumerate(boxes):
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
        assert not any(box.overlaps(other) for other in boxes[n + 1 :])
    whole = {t.get_text() for t in labels}
    assert whole == {f"#{i} {o.gpus}× {o.gpu}\n{o.where}" for i, o in front}
