"""`plan` for people: the options as a rich table ranked by cost with the Pareto front marked, the answers, and an HTML
page with time against cost on log axes (inline SVG, drawn by matplotlib). Returns renderables and text; never prints."""

from __future__ import annotations

import html
import io

from rich.markup import escape
from rich.table import Table

import gptbench
from gptbench.cloud.plan import Option, Plan
from gptbench.views.files import STYLE, matplotlib_or_hint

ANSWER_ORDER = ("cheapest_within_deadline", "fastest_within_budget", "own_machine", "cheapest", "fastest")


def _config(o: Option) -> str:
    if o.micro_batch is None:
        return "—"
    text = f"{o.micro_batch} × {o.grad_accum}"
    text += {"none": "", "optimizer": "\nZeRO-1", "full": "\nFSDP"}[o.sharding]
    return text + ("\n+ ckpt" if o.activation_checkpointing else "")


def _range(value: float | None, band: tuple[float, float] | None, fmt: str) -> str:
    if value is None:
        return "—"
    text = fmt.format(value)
    return text + ("\n(" + fmt.format(band[0]) + "–" + fmt.format(band[1]) + ")" if band else "")


def options_table(plan: Plan) -> Table:
    """Every option, cheapest first; ★ marks the Pareto front; rows without a figure say why."""
    title = "gptbench plan · cheapest first · ★ = Pareto-optimal (nothing both faster and cheaper)"
    table = Table(title=title, title_justify="left")
    for name, justify in (
        ("#", "right"),
        ("where", "left"),
        ("GPUs", "left"),
        ("batch × accum", "left"),
        ("tok/s", "right"),
        ("scaling", "right"),
        ("set-up h", "right"),
        ("hours (band)", "right"),
        ("cost (band)", "right"),
        ("basis", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for i, o in enumerate(plan.options, start=1):
        mark = "★ " if o.pareto else ""
        where = escape(mark + o.where.split(" (")[0]) + (" [dim](note)[/dim]" if o.note else "")
        head = [str(i), where, f"{o.gpus}× {o.gpu}"]
        if o.problem:
            table.add_row(*head, "—", "—", "—", "—", "—", "—", f"[red]{escape(o.problem)}[/red]")
            continue
        short = o.evidence.split(":")[0].split(" (")[0] if o.basis == "projected" else "measured"
        table.add_row(
            *head,
            _config(o),
            f"{o.tokens_per_sec:,.0f}",
            f"{o.scaling_efficiency:.2f}" if o.gpus > 1 else "—",
            f"{o.setup_hours:,.2f}",
            _range(o.hours, o.hours_range, "{:,.1f}"),
            _range(o.cost_usd, o.cost_range_usd, "${:,.0f}") if o.cost_usd is not None else "—",
            f"{o.basis}\n{escape(short)}" if o.basis == "projected" else "measured",
        )
    return table


def note_lines(plan: Plan) -> list[str]:
    """The notes the table marks, by row number: labels for sharding and checkpointing, missing prices."""
    return [f"#{i} {o.where}: {o.note}" for i, o in enumerate(plan.options, start=1) if o.note and not o.problem]


def answer_lines(plan: Plan) -> list[str]:
    """The answers, in the order a reader asks them."""
    return [plan.answers[key].text for key in ANSWER_ORDER if plan.answers.get(key)]  # type: ignore[union-attr]


def chart_svg(plan: Plan) -> str:
    """Time against cost on log axes: every priced option with its band as error bars, the Pareto front as a line."""
    matplotlib = matplotlib_or_hint()
    from matplotlib.figure import Figure

    points = [o for o in plan.options if o.hours is not None and o.cost_usd is not None]
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "gptbench", "font.size": 9}):
        fig = Figure(figsize=(10, 6.5), layout="constrained")
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
            for o in front:
                ax.annotate(f" {o.gpus}× {o.gpu}\n {o.where[:34]}", (o.hours, o.cost_usd), fontsize=8, color="#222")
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
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def _cells(o: Option) -> list[str]:
    money = f"${o.cost_usd:,.2f}" if o.cost_usd is not None else "—"
    hours = f"{o.hours:,.2f}" if o.hours is not None else "—"
    return [("★ " if o.pareto else "") + o.where, f"{o.gpus}× {o.gpu}", _config(o).replace("\n", " "), hours, money,
            o.problem or o.note]


def to_html(plan: Plan) -> str:
    """One page that needs no network: the answers, the chart, the table and the assumptions."""
    esc = html.escape
    heads = ["where", "GPUs", "batch × accum", "hours", "cost", "notes"]
    rows = "\n".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in _cells(o)) + "</tr>" for o in plan.options)
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
