"""The `compare` table and the lines around it, built here (never printed) for the terminal and every export."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from gptbench.views.compare import Comparison
from gptbench.views.load import records, table_columns

ERROR_CHARS = 160  # a failed run's error, shortened to a line


def headers(comparison: Comparison) -> list[str]:
    """The table's column headers, `group` first with --group."""
    return (["group"] if comparison.group else []) + [c.header or c.key for c in table_columns()]


def numeric(comparison: Comparison) -> list[bool]:
    """Which columns hold numbers (right-aligned), in `headers` order."""
    return ([False] if comparison.group else []) + [c.higher_is_better is not None for c in table_columns()]


def cells(comparison: Comparison, row: dict[str, Any]) -> list[str]:
    """One run's cells, as text, in `headers` order."""
    return ([str(row["group"])] if comparison.group else []) + [c.cell(row) for c in table_columns()]


def table_rows(comparison: Comparison) -> list[tuple[dict[str, Any], list[str], bool]]:
    """Each run's plain values, its cells, and whether it opens a new group (with --group), in display order."""
    rows, previous = [], None
    for row in records(comparison.frame):
        rows.append((row, cells(comparison, row), comparison.group and previous is not None and row["group"] != previous))
        previous = row["group"]
    return rows


def warning_lines(comparison: Comparison) -> list[str]:
    """What a reader must know before reading the table: which fields differ between the runs."""
    if not comparison.differences:
        return []
    line = f"these runs differ in {'; '.join(comparison.differences)}: their tokens/s, MFU and cost are not like for like"
    return [line + ("" if comparison.group else " (--group lines up identical configurations)")]


def footnotes(comparison: Comparison) -> list[str]:
    """Under the table: the baseline, where each price came from, and why each failed run failed."""
    lines = [comparison.baseline] if comparison.baseline else []
    lines += [f"$: {note}" for note in comparison.price_notes]
    lines.append("FineWeb-10B epoch: 10e9 tokens at the measured tokens/s")
    for row in records(comparison.frame[comparison.frame["busy"] == True]):  # noqa: E712 - a pandas mask, None aside
        lines.append(f"{row['file']} run {row['run']} (busy): measured while the device was shared: {row['contention']}")
    for row in records(comparison.frame[comparison.frame["status"] != "ok"]):
        error = " ".join(str(row["error"] or "no message").split())
        short = error if len(error) <= ERROR_CHARS else error[: ERROR_CHARS - 1] + "…"
        lines.append(f"{row['file']} run {row['run']}: {row['status']}: {short}")
    return lines


def compare_table(comparison: Comparison) -> Table:
    """The runs side by side; failed runs show their status in red, --group draws a rule between groups."""
    frame = comparison.frame
    title = f"gptbench compare · {len(frame)} runs from {comparison.files} reports"
    table = Table(title=title, title_justify="left")
    for header, right in zip(headers(comparison), numeric(comparison), strict=True):
        table.add_column(header, justify="right" if right else "left", overflow="fold")
    for row, texts, new_group in table_rows(comparison):
        if new_group:
            table.add_section()
        table.add_row(*texts, style=None if row["status"] == "ok" else "red")
    return table
