"""`plan --html`: one offline page with the answers, time against cost on log axes (inline SVG drawn by matplotlib,
every label placed where it overlaps no other and stays inside the axes), the table and the assumptions."""

from __future__ import annotations

import html
import io

import gptbench
from gptbench.cloud.plan import Option, Plan
from gptbench.views.files import STYLE, matplotlib_or_hint
from gptbench.views.plan import answer_lines, config_text


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
            xerr = [[o.hours - o.hours_range[0]], [o.hours_range[1] - o.hours]] if o.hours_range else None  # type: ignore[operator]
            c = o.cost_range_usd
            yerr = [[o.cost_usd - c[0]], [c[1] - o.cost_usd]] if c else None  # type: ignore[operator]
            ax.errorbar(o.hours, o.cost_usd, xerr=xerr, yerr=yerr, fmt="o", color=colour, ms=7, alpha=0.85, capsize=2)
        front = sorted((o for o in points if o.pareto), key=lambda o: o.hours or 0.0)
        if front:
            ax.plot([o.hours for o in front], [o.cost_usd for o in front], "-", color="#d62728", lw=2.5, label="Pareto front")
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
    return [("★ " if o.pareto else "") + o.where, f"{o.gpus}× {o.gpu}", config_text(o), hours, money,
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
