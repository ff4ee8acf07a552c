"""The `compare` table and the lines around it, built here (never printed) for the terminal and every export."""

from __future__ import annotations

from functools import partial
from typing import Any

from rich.table import Table

from gptbench.views.compare import Comparison
from gptbench.views.layout import one_line, row_table, widest_that_fits
from gptbench.views.load import records, table_columns

ERROR_CHARS = 160  # a failed run's error, shortened to a line
# Narrower terminals drop columns in this order, least read first, so each run stays one line: the machine,
# tokens/s, MFU, $ per billion tokens and the FineWeb-10B hours stay to the end (CSV, Markdown, HTML keep them all).
DROP_ORDER = (
    "allocator", "joules_per_token", "power_avg_w", "peak_memory_gb", "dtype", "seq_len", "model", "relative_speed",
    "accelerator",
)  # fmt: skip


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


def _plural(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


def _table(comparison: Comparison, dropped: tuple[str, ...]) -> Table:
    columns = ([None] if comparison.group else []) + list(table_columns())
    keep = [i for i, c in enumerate(columns) if c is None or c.key not in dropped]
    frame = comparison.frame
    title = f"gptbench compare · {_plural(len(frame), 'run')} from {_plural(comparison.files, 'report')}"
    table = row_table(title)
    heads, right = headers(comparison), numeric(comparison)
    for i in keep:
        table.add_column(heads[i], justify="right" if right[i] else "left")
    for row, texts, new_group in table_rows(comparison):
        if new_group:
            table.add_section()
        cells = [texts[i] for i in keep]
        if dropped:  # narrow: the epoch in hours alone (the days are in the wide table and the exports)
            cells = [c.split(" (")[0] if heads[i] == "FineWeb-10B epoch" else c for c, i in zip(cells, keep, strict=True)]
        table.add_row(*cells, style=None if row["status"] == "ok" else "red")
    return one_line(table)


def compare_table(comparison: Comparison, width: int = 10_000) -> Table:
    """The runs side by side, one line each: every column that fits `width`, dropping the least read first; failed
    runs show their status in red, --group separates the groups."""
    layouts = [DROP_ORDER[:n] for n in range(len(DROP_ORDER) + 1)]
    return widest_that_fits([partial(_table, comparison, d) for d in layouts], width)
