"""A comparison as CSV, Markdown, a self-contained HTML page with charts, or JSON; files written atomically, never over
an existing file unless asked."""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gptbench
from gptbench.reports.text import fmt_rate
from gptbench.views.compare import Comparison
from gptbench.views.compare_table import footnotes, headers, numeric, table_rows, warning_lines
from gptbench.views.files import STYLE, matplotlib_or_hint
from gptbench.views.load import records, table_columns

if TYPE_CHECKING:  # matplotlib is the optional html extra: imported only when a page is drawn
    from matplotlib.axes import Axes

JSON_SCHEMA = "gptbench.compare/1"


def to_csv(comparison: Comparison) -> str:
    """Every column of every run, raw values (no units in the cells: they are in the column names)."""
    return comparison.frame.to_csv(index=False)


def to_json_data(comparison: Comparison) -> dict[str, Any]:
    """Everything `compare` knows, for scripts: the runs with every column, and the notes."""
    return {
        "schema": JSON_SCHEMA,
        "baseline": comparison.baseline,
        "differences": list(comparison.differences),
        "price_notes": list(comparison.price_notes),
        "skipped": list(comparison.skipped),
        "grouped": comparison.group,
        "runs": records(comparison.frame),
    }


def to_markdown(comparison: Comparison) -> str:
    """A pipe table to paste into an issue or a post, with the warnings above it and the notes below."""
    lines = [f"> **Not like for like:** {line}" for line in warning_lines(comparison)]
    lines += [""] if lines else []
    lines.append("| " + " | ".join(headers(comparison)) + " |")
    lines.append("| " + " | ".join("---:" if right else "---" for right in numeric(comparison)) + " |")
    for _, texts, _ in table_rows(comparison):
        lines.append("| " + " | ".join(text.replace("|", "\\|") for text in texts) + " |")
    lines.append("")
    lines += [f"- {note}" for note in footnotes(comparison)]
    return "\n".join(lines) + "\n"


def _label(cells: Mapping[str, str]) -> str:
    return f"{cells['hostname']} · {cells['accelerator']}\n{cells['model']} {cells['seq_len']} {cells['dtype']}"


def _bars(
    ax: Axes, rows: list[dict[str, Any]], key: str, colors: list[tuple[float, ...]], fmt: Callable[[float], str], missing: str
) -> None:
    """Horizontal bars of `key`, one per run, top to bottom; a run without a value gets a note, never a zero bar."""
    values = [row[key] for row in rows]
    positive = [v for v in values if v is not None and v > 0]
    ax.barh(range(len(rows)), [v or 0 for v in values], color=colors, height=0.6)
    if positive and max(positive) / min(positive) > 50:  # a laptop beside an H100 would be an invisible sliver
        ax.set_xscale("log")
        ax.set_xlim(min(positive) / 3, max(positive) * 6)
    elif positive:
        ax.set_xlim(0, max(positive) * 1.35)
    left = ax.get_xlim()[0]
    for y, (row, value) in enumerate(zip(rows, values, strict=True)):
        if value is None:
            text, colour = (missing if row["status"] == "ok" else row["status"].upper()), "#b00"
        else:
            text, colour = fmt(value), "#222"
        ax.text(max(value or 0, left), y, f"  {text}", va="center", fontsize=9, color=colour)
    ax.set_yticks(range(len(rows)))
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


@dataclass(frozen=True)
class Chart:
    """One bar chart of the page: a column of the comparison, one bar per run."""

    key: str
    title: str
    fmt: Callable[[float], str]
    missing: str  # the note beside an ok run without a value
    empty: str  # why the chart is left out, when no run has a value


CHARTS = (
    Chart("tokens_per_sec", "Training throughput (tokens/s, higher is better)", fmt_rate, "n/a", "no run finished"),
    Chart(
        "fineweb_epoch_usd",
        "$ per FineWeb-10B epoch (10e9 tokens, lower is better)",
        lambda v: f"${v:,.0f}",
        "no price: pass --price",
        "no run has a price (pass --price 1.29, USD per GPU-hour, or --price NAME=USD)",
    ),
)


def chart_svg(comparison: Comparison) -> tuple[str | None, list[str]]:
    """Bar charts of tokens/s and of $ per FineWeb-10B epoch per run, as one inline SVG (text drawn as paths), and a
    line for each chart left out because no run has a value for it (axes around nothing would only show ticks)."""
    rows = records(comparison.frame)
    drawn = [c for c in CHARTS if any(row[c.key] is not None for row in rows)]
    left_out = [f"No chart of {c.title.split(' (')[0]}: {c.empty}." for c in CHARTS if c not in drawn]
    if not drawn:
        return None, left_out
    matplotlib = matplotlib_or_hint()
    from matplotlib.figure import Figure

    labels = [_label({c.key: c.cell(row) for c in table_columns()}) for row in rows]
    palette = matplotlib.colormaps["tab10"].colors
    machines = list(dict.fromkeys(f"{row['hostname']}/{row['accelerator']}" for row in rows))  # a colour per machine
    colors = [palette[machines.index(f"{row['hostname']}/{row['accelerator']}") % len(palette)] for row in rows]
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "gptbench", "font.size": 9}):
        fig = Figure(figsize=(10, 0.2 + len(drawn) * (1 + 0.55 * len(rows))), layout="constrained")
        for ax, chart in zip(fig.subplots(len(drawn), 1, squeeze=False)[:, 0], drawn, strict=True):
            _bars(ax, rows, chart.key, colors, chart.fmt, chart.missing)
            log = " · log scale" if ax.get_xscale() == "log" else ""
            ax.set_title(chart.title + log, loc="left", fontsize=11)
            ax.set_yticklabels(labels)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})  # no timestamp, no links
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :], left_out  # drop the XML prolog and DOCTYPE: the page is HTML5


def to_html(comparison: Comparison) -> str:
    """One page that needs no network: the warnings, the charts (inline SVG), the table and its notes."""
    esc = html.escape
    svg, left_out = chart_svg(comparison)
    klass = [' class="num"' if right else "" for right in numeric(comparison)]
    head = "".join(f"<th{k}>{esc(h)}</th>" for h, k in zip(headers(comparison), klass, strict=True))
    body = "\n".join(
        f"<tr class='{'' if row['status'] == 'ok' else 'failed'}{' start' if new_group else ''}'>"
        + "".join(f"<td{k}>{esc(t)}</td>" for t, k in zip(texts, klass, strict=True))
        + "</tr>"
        for row, texts, new_group in table_rows(comparison)
    )
    parts = [
        f"<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>gptbench compare</title><style>{STYLE}</style>",
        "</head><body>\n<h1>gptbench compare</h1>",
        f"<p class=meta>{len(comparison.frame)} runs from {comparison.files} reports · gptbench {esc(gptbench.__version__)}</p>",
        *(f"<p class=warn><b>Not like for like:</b> {esc(line)}</p>" for line in warning_lines(comparison)),
        *([f"<figure>{svg}</figure>"] if svg else []),
        *(f"<p class=notes>{esc(line)}</p>" for line in left_out),
        f"<div class=scroll><table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table></div>",
        "<ul class=notes>" + "".join(f"<li>{esc(note)}</li>" for note in footnotes(comparison)) + "</ul>",
        "</body></html>\n",
    ]
    return "\n".join(parts)
