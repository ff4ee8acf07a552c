"""The HTML export seen by a real browser: headless Chromium renders the page and the screenshot must show the bars."""

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
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Chromium (apt-get install chromium)")
TAB10 = {"blue": (31, 119, 180), "orange": (255, 127, 14), "green": (44, 160, 44)}  # the bars: one colour per machine


def screenshot(page: Path, png: Path, profile: Path) -> None:
    """Render `page` offline in headless Chromium, as root in a container would, into `png`."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync"]
    flags += ["--disable-background-networking", "--disable-component-update", f"--user-data-dir={profile}"]
    cmd = [CHROMIUM, *flags, f"--screenshot={png}", "--window-size=1280,1400", page.as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120, check=True)


def test_the_screenshot_shows_a_bar_per_machine_in_both_charts(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    image = pytest.importorskip("PIL.Image")  # comes with matplotlib
    write_all(tmp_path / "reports")
    comparison = compare(load_runs([tmp_path / "reports"]), CompareOptions(prices=parse_prices(["laptop=0.05"])))
    page = tmp_path / "compare.html"
    page.write_text(to_html(comparison), encoding="utf-8")
    png = tmp_path / "compare.png"
    screenshot(page, png, tmp_path / "profile")
    pixels = image.open(png).convert("RGB")
    counts = dict.fromkeys(TAB10, 0)
    for n, colour in pixels.getcolors(maxcolors=1 << 24):
        for name, rgb in TAB10.items():
            if all(abs(a - b) <= 4 for a, b in zip(colour, rgb, strict=True)):
                counts[name] += n
    # three machines, each a bar in both charts (the laptop priced with --price): thousands of pixels per colour;
    # a page whose chart failed to draw has none of these colours at all
    assert all(n > 2000 for n in counts.values()), counts
    width, height = pixels.size
    non_white = sum(n for n, colour in pixels.getcolors(maxcolors=1 << 24) if sum(colour) < 720)
    assert non_white > 0.03 * width * height
