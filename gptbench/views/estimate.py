"""`estimate` for people: the estimate as a two-column table, where the step's time goes (--explain), the catalog
priced offer by offer (--catalog), and the assumptions, wrapped under their own indent. Returns renderables; never
prints. Every table keeps a row to one line at 100 columns and more; --catalog at any width."""

from __future__ import annotations

from functools import partial

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from gptbench.cloud.breakdown import Breakdown
from gptbench.cloud.estimate import Estimate, Throughput
from gptbench.cloud.throughput import Catalog
from gptbench.predict.workload import Workload
from gptbench.views.layout import bullets, one_line, row_table, widest_that_fits

FITS = {True: "yes", False: "[red]no[/red]", None: "?"}


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def _hours(hours: float) -> str:
    return f"{hours:,.2f} h = {hours / 24:,.2f} days"


def assumptions(lines: list[str]) -> RenderableType:
    """The heading and one bullet per assumption, each wrapped under its own first word."""
    return Group(Text("assumptions", style="bold"), bullets(lines))


def estimate_table(e: Estimate) -> Table:
    """Tokens, throughput with its band, the evidence, time, cost, electricity and memory: a row each."""
    t = e.throughput
    scaled = e.scaling_basis == "modelled"  # one GPU's rate, its multi-GPU scaling from the model
    basis = f"{t.basis} on 1 GPU, scaling modelled" if scaled and t.basis == "measured" else t.basis
    label = f" ({basis})"
    range_basis = f"{t.range_basis} × scaling" if scaled else t.range_basis
    table = Table(title=f"gptbench estimate · {basis}", title_justify="left", show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    table.add_row("tokens", f"{e.plan.tokens:,.0f}")
    table.add_row("throughput", f"{e.tokens_per_sec:,.0f} tok/s on {e.gpus} {t.device}(s){label}")
    if e.hours_range and t.basis in ("carried", "projected"):
        slow, fast = (e.tokens_per_sec * e.hours / h for h in (e.hours_range[1], e.hours_range[0]))
        table.add_row(range_basis, f"{slow:,.0f}–{fast:,.0f} tok/s")
    if t.evidence:
        table.add_row("evidence", escape(t.evidence))
    time = _hours(e.hours)
    if e.hours_range:
        time += f"  ({range_basis}: {e.hours_range[0]:,.2f}–{e.hours_range[1]:,.2f} h)"
    table.add_row("time" + label if t.basis in ("carried", "projected") else "time", time)
    if e.cost_usd is not None:
        cost = f"{_money(e.cost_usd)} at {_money(e.price_per_hour_usd)}/hour"
        if e.cost_range_usd:
            cost += f"  (range {_money(e.cost_range_usd[0])}–{_money(e.cost_range_usd[1])})"
        table.add_row("cost" + label if t.basis in ("carried", "projected") else "cost", cost)
    if e.electricity is not None:
        el = e.electricity
        table.add_row(
            "electricity",
            f"{el.kwh:,.1f} kWh × ${el.kwh_price_usd:g}/kWh = {_money(el.cost_usd)} ({el.power_w:,.0f} W, {el.power_basis})",
        )
    if t.memory_gb is not None:
        fits = {True: "fits", False: "does NOT fit", None: "capacity unknown"}[t.fits]
        memory = f"{t.memory_gb:,.1f} GB of {t.memory_capacity_gb or '?'} GB: {fits} at this batch"
        table.add_row(f"memory ({'measured' if t.memory_measured else 'est.'})", memory)
    return table


def what_fits(w: Workload | None, t: Throughput) -> str:
    """The cheapest switch that the memory model says makes the workload fit, or a smaller batch."""
    from gptbench.predict.fit import cheapest_fit

    fit = cheapest_fit(w, t.memory_capacity_gb) if w is not None and t.memory_capacity_gb else None
    if fit is None or w is None:
        more = "" if w is None or w.world_size > 1 else " or more GPUs with --shard"
        return f"try a smaller --batch{more}"
    flags = fit.switch.flags if fit.switch.sharding != "none" or w.sharding == "none" else f"--shard none {fit.switch.flags}"
    return f"it fits with {flags} ({fit.breakdown.total_gb:,.1f} GB per GPU; costs {fit.switch.cost})"


def breakdown_table(b: Breakdown) -> Table:
    """Where a step's time goes on one GPU, per operation group, against the measured step when there is one."""
    table = Table(title=f"where a step's time goes on {b.gpu} (modelled: the projection's operations)", title_justify="left")
    for name, justify in (("group", "left"), ("ms", "right"), ("share", "right"), ("bound", "left")):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    table.add_column("what would change it")
    for g in b.groups:
        table.add_row(g.group, f"{g.time_s * 1e3:,.1f}", f"{g.share:.0%}", g.bound, escape(g.switch))
    table.add_row("modelled step", f"{b.step_time_s * 1e3:,.1f}", "100%", "", "")
    if b.measured_step_time_s is not None:
        ratio, basis = b.step_time_s / b.measured_step_time_s, b.measured_basis or "measured"
        table.add_row(
            f"{basis} step", f"{b.measured_step_time_s * 1e3:,.1f}", "", "",
            escape(f"{b.measured_source}; modelled/{basis} {ratio:.2f}"),
        )  # fmt: skip
    return table


def estimate_view(e: Estimate, explained: Breakdown | None = None, workload: Workload | None = None) -> RenderableType:
    """The estimate, a warning when it will not fit, the breakdown (--explain), and the assumptions."""
    parts: list[RenderableType] = [estimate_table(e)]
    if e.throughput.fits is False:
        warning = f"estimated not to fit in memory at this batch; {what_fits(workload, e.throughput)}"
        parts.append(Text.from_markup(f"[yellow]warning:[/yellow] {escape(warning)}"))
    if explained is not None:
        parts.append(breakdown_table(explained))
    parts.append(assumptions(e.assumptions))
    return Group(*parts)


def _basis(e: Estimate) -> str:
    """measured, carried, or projected with whether a GPU of its architecture was measured (predict/order.py)."""
    t = e.throughput
    if t.basis != "projected" or not t.evidence:
        return t.basis
    return "same arch" if "GPUs were" in t.evidence else "no relative"


def _catalog_table(catalog: Catalog, with_ranges: bool, keys: dict[str, str] | None) -> Table:
    table = row_table("gptbench estimate --catalog · cheapest first · measured, carried or projected")
    for name in ("#", "offer", "$/hour", "tok/s", "B" if keys else "basis", "time", "cost", "fits"):
        table.add_column(name + (" (range)" if with_ranges and name in ("time", "cost") else ""))
        table.columns[-1].justify = "left" if name in ("offer", "basis", "B", "fits") else "right"
    for i, row in enumerate(catalog.rows, start=1):
        o, e = row.offer, row.estimate
        # Provider and GPUs keep the table readable in 80 columns; instance names and dates are in --json.
        head = [str(i), escape(f"{o.provider} {o.gpus}× {o.gpu}"), f"${o.price_per_hour_usd:,.2f}"]
        if e is None:
            table.add_row(*head, "n/a", "—", "—", "—", escape(row.problem or ""))
            continue
        time, cost = f"{e.hours:,.1f} h", _money(e.cost_usd)
        if e.hours_range and with_ranges:  # measured: the p90-p10 steps; carried or projected: the held-out band
            time += f" ({e.hours_range[0]:,.0f}–{e.hours_range[1]:,.0f})"
        if e.cost_range_usd and with_ranges:
            cost += f" ({e.cost_range_usd[0]:,.0f}–{e.cost_range_usd[1]:,.0f})"
        basis = keys[_basis(e)] if keys else _basis(e)
        table.add_row(*head, f"{e.tokens_per_sec:,.0f}", basis, time, cost, FITS[e.throughput.fits])
    return one_line(table)


def catalog_view(catalog: Catalog, width: int) -> RenderableType:
    """Every offer priced, one line each at `width` columns (ranges dropped, then the basis keyed by a letter, where
    they do not fit), and the notes."""
    words = list(dict.fromkeys(_basis(r.estimate) for r in catalog.rows if r.estimate))
    keys = {w: w[:1].upper() if [v[:1] for v in words].count(w[:1]) == 1 else w[:2].capitalize() for w in words}
    layouts = [(True, None), (False, None), (False, keys)]
    table = widest_that_fits([partial(_catalog_table, catalog, r, k) for r, k in layouts], width)
    notes = catalog.assumptions
    if any(c.header == "B" for c in table.columns):
        notes = [*notes, "B (basis): " + ", ".join(f"{k} {w}" for w, k in keys.items())]
    if catalog.rows:
        dates = sorted(r.offer.observed for r in catalog.rows)
        notes = [*notes, f"prices observed {dates[0]} to {dates[-1]} (instance names, dates and sources: --json)"]
    return Group(table, assumptions(notes))
