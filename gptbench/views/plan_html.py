"""`plan --html`: one offline page with the answers, time against cost on log axes (inline SVG drawn by matplotlib,
every label placed where it overlaps no other and stays inside the axes), the table and the assumptions."""

from __future__ import annotations

import html
import io
from typing import TYPE_CHECKING

import gptbench
from gptbench.cloud.plan import Option, Plan
from gptbench.views.files import STYLE, matplotlib_or_hint
from gptbench.views.plan import answer_lines, config_text

if TYPE_CHECKING:  # matplotlib is optional (the html extra): imported where a chart is drawn
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase
    from matplotlib.figure import Figure
    from matplotlib.text import Annotation
    from matplotlib.transforms import Bbox

# Where a label may go around its point, nearest first: offsets in points, and the text's alignment there.
DIRECTIONS = (
    (1, 1, "left", "bottom"), (1, -1, "left", "top"), (-1, 1, "right", "bottom"), (-1, -1, "right", "top"),
    (1, 0, "left", "center"), (-1, 0, "right", "center"), (0, 1, "center", "bottom"), (0, -1, "center", "top"),
)  # fmt: skip
DISTANCES = (8, 24, 44, 70, 100, 140, 190)


def label_text(o: Option, rank: int) -> str:
    """A Pareto point's label: its row in the table, the GPUs and the whole offer (never cut)."""
    return f"#{rank} {o.gpus}× {o.gpu}\n{o.where}"


def place_labels(fig: Figure, ax: Axes, labelled: list[tuple[float, float, str]]) -> list[Annotation]:
    """Annotate each (x, y, text) at the nearest spot where its box overlaps no label placed before it, no legend and
    no labelled point, and stays inside the axes; the label is drawn with a leader line when it moved away. A label
    with no such spot shows its row number alone (the table below the chart names it)."""
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]  # the Agg canvas chart_figure gives it
    inside = ax.get_window_extent(renderer)
    legend = ax.get_legend()
    taken = [legend.get_window_extent(renderer)] if legend else []
    for x, y in ((x, y) for x, y, _ in labelled):  # the points themselves: a box of the marker's size around each
        px, py = ax.transData.transform((x, y))
        taken.append(Bbox.from_extents(px - 6, py - 6, px + 6, py + 6))
    placed = []
    for x, y, text in labelled:
        for words in (text, text.split(" ")[0]):
            spot = _first_free(ax, renderer, (x, y), words, inside, taken)
            if spot is not None:
                placed.append(spot)
                taken.append(Text.get_window_extent(spot, renderer))
                break
    return placed


def _first_free(
    ax: Axes, renderer: RendererBase, xy: tuple[float, float], text: str, inside: Bbox, taken: list[Bbox]
) -> Annotation | None:
    from matplotlib.text import Text

    for distance in DISTANCES:
        for dx, dy, ha, va in DIRECTIONS:
            arrow = {"arrowstyle": "-", "color": "#888", "lw": 0.8} if distance > DISTANCES[0] else None
            note = ax.annotate(
                text, xy, xytext=(dx * distance, dy * distance), textcoords="offset points", ha=ha, va=va, fontsize=8,
                color="#222", arrowprops=arrow, bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.6},
            )  # fmt: skip
            note.update_positions(renderer)
            box = Text.get_window_extent(note, renderer)  # the words alone: the leader line may cross points
            fits = inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
            if fits and not any(box.overlaps(other) for other in taken):
                return note
            note.remove()
    return None


def chart_figure(plan: Plan) -> Figure:
    """Time against cost on log axes: every priced option with its band as error bars, the Pareto front as a line,
    each front point labelled where the label overlaps no other label and stays inside the axes."""
    matplotlib_or_hint()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = [o for o in plan.options if o.hours is not None and o.cost_usd is not None]
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    FigureCanvasAgg(fig)  # a renderer to measure the labels with
    ax = fig.subplots()
    for o in points:
        colour = "#d62728" if o.pareto else "#1f77b4"
        hours, cost = o.hours or 0.0, o.cost_usd or 0.0  # never 0: `points` holds only options with both
        xerr = [[hours - o.hours_range[0]], [o.hours_range[1] - hours]] if o.hours_range else None
        c = o.cost_range_usd
        yerr = [[cost - c[0]], [c[1] - cost]] if c else None
        ax.errorbar(hours, cost, xerr=xerr, yerr=yerr, fmt="o", color=colour, ms=7, alpha=0.85, capsize=2)
    front = sorted((o for o in points if o.pareto), key=lambda o: o.hours or 0.0)
    if front:
        xs, ys = [o.hours or 0.0 for o in front], [o.cost_usd or 0.0 for o in front]
        ax.plot(xs, ys, "-", color="#d62728", lw=2.5, label="Pareto front")
    if plan.request.max_hours:
        ax.axvline(plan.request.max_hours, color="#888", ls="--", label=f"deadline {plan.request.max_hours:g} h")
    if plan.request.budget_usd:
        ax.axhline(plan.request.budget_usd, color="#888", ls=":", label=f"budget ${plan.request.budget_usd:,.0f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("hours (set-up included; bars: band)")
    ax.set_ylabel("cost, USD (bars: band)")
    ax.set_title(f"Where to train: {plan.request.tokens:,.0f} tokens, time against cost (log axes)", loc="left")
    ax.grid(alpha=0.3, which="both")
    if front or plan.request.max_hours or plan.request.budget_usd:
        ax.legend(loc="upper right")
    fig.canvas.draw()  # the constrained layout settles the axes; then it is frozen so the labels stay where measured
    fig.set_layout_engine("none")
    ranks = {id(o): i for i, o in enumerate(plan.options, start=1)}
    place_labels(fig, ax, [(o.hours, o.cost_usd, label_text(o, ranks[id(o)])) for o in front])  # type: ignore[misc]
    return fig


def chart_svg(plan: Plan) -> str:
    """The chart as inline SVG, text drawn as paths so that it looks the same in every browser."""
    matplotlib = matplotlib_or_hint()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "gptbench", "font.size": 9}):
        fig = chart_figure(plan)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def _cells(rank: int, o: Option) -> list[str]:
    money = f"${o.cost_usd:,.2f}" if o.cost_usd is not None else "—"
    hours = f"{o.hours:,.2f}" if o.hours is not None else "—"
    return [str(rank), ("★ " if o.pareto else "") + o.where, f"{o.gpus}× {o.gpu}", config_text(o), hours, money,
            o.problem or o.note]


def to_html(plan: Plan) -> str:
    """One page that needs no network: the answers, the chart, the table and the assumptions."""
    esc = html.escape
    heads = ["#", "where", "GPUs", "batch × accum", "hours", "cost", "notes"]
    cells = (_cells(rank, o) for rank, o in enumerate(plan.options, start=1))
    rows = "\n".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in cells)
    parts: list[str] = [
        f"<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>gptbench plan</title><style>{STYLE}</style>",
        "</head><body>\n<h1>gptbench plan</h1>",
        f"<p class=meta>{len(plan.options)} options · gptbench {esc(gptbench.__version__)}</p>",
        "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in answer_lines(plan)) + "</ul>",
        f"<figure>{chart_svg(plan)}</figure>",
        "<div class=scroll><table><thead><tr>" + "".join(f"<th>{h}</th>" for h in heads) + f"</tr></thead><tbody>\n{rows}",
        "</tbody></table></div>",
        "<ul class=notes>" + "".join(f"<li>{esc(line)}</li>" for line in plan.assumptions) + "</ul>",
        "</body></html>\n",
    ]
    return "\n".join(parts)
