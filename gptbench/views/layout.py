"""Fitting a terminal: prose lines that wrap under their own indent, and the widest of several tables that fits.

Every table a command prints keeps one line per row: a view offers its column sets from the most to the least
informative, and `widest_that_fits` picks the first whose natural width fits the console (COLUMNS when piped).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich import box
from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text


def natural_width(renderable: RenderableType, width: int) -> int:
    """The columns `renderable` takes when nothing forces it narrower (at most `width`... plus what overflows)."""
    console = Console(width=10_000, file=None, color_system=None)
    return Measurement.get(console, console.options, renderable).maximum


def widest_that_fits(tables: Sequence[Callable[[], Table]], width: int) -> Table:
    """The first table (most columns first) whose rows each fit on one line of `width` columns; else the last, its
    widest text column (the name of each row) cut short with an ellipsis so that the numbers stay whole."""
    for make in tables[:-1]:
        table = make()
        if natural_width(table, width) <= width:
            return table
    table = tables[-1]()
    excess = natural_width(table, width) - width
    texts = {id(c): max([cell_len(str(c.header))] + [cell_len(str(cell)) for cell in c.cells]) for c in table.columns}
    label = max((c for c in table.columns if c.justify == "left"), key=lambda c: texts[id(c)], default=None)
    if excess > 0 and label is not None:  # the widest text column gives up what the numbers need
        label.max_width, label.overflow = max(8, texts[id(label)] - excess), "ellipsis"
    for column in table.columns:
        column.no_wrap = True
    return table


def row_table(title: str | None = None) -> Table:
    """A table drawn light: a rule under the header, no vertical lines, so more columns fit."""
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))


def one_line(table: Table) -> Table:
    """Every column of `table` kept to one line per row (the caller chose columns that fit)."""
    for column in table.columns:
        column.no_wrap = True
    return table


def bullets(lines: Sequence[str | Text], mark: str = "•", indent: int = 2) -> Table:
    """Lines that wrap at word boundaries under their own first letter, `mark` hanging in front of each."""
    grid = Table.grid(padding=(0, 1, 0, 0))
    grid.add_column(no_wrap=True, min_width=indent + len(mark), justify="right")
    grid.add_column(overflow="fold")
    for line in lines:
        grid.add_row(mark, line if isinstance(line, Text) else Text(line))
    return grid
