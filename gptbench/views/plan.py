"""`plan` for people, in a terminal: the answers first, then the options that answer the question (the Pareto front,
those within the deadline and budget, the answers, your machines; `--all` for every row) ranked by cost, one line per
row at any width (the widest column set that fits), the notes of the rows shown, and the assumptions.
Returns renderables and text; never prints. The HTML page is plan_html.py."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from gptbench.cloud.plan import Option, Plan
from gptbench.views.layout import bullets, one_line, row_table, widest_that_fits

ANSWER_ORDER = ("cheapest_within_deadline", "fastest_within_budget", "own_machine", "cheapest", "fastest")
SWITCH_WORDS = {"none": "", "optimizer": "ZeRO-1", "full": "FSDP"}


def config_text(o: Option) -> str:
    """`16×32`, `8×4 FSDP ckpt`: micro-batch × accumulation and the switches that made it fit."""
    if o.micro_batch is None:
        return "—"
    words = [f"{o.micro_batch}×{o.grad_accum}", SWITCH_WORDS[o.sharding], "ckpt" if o.activation_checkpointing else ""]
    return " ".join(w for w in words if w)


def _number(value: float | None, band: tuple[float, float] | None, fmt: str, with_band: bool) -> str:
    if value is None:
        return "—"
    text = fmt.format(value)
    return text + (f" ({fmt.format(band[0])}–{fmt.format(band[1])})" if with_band and band else "")


def _hours_fmt(value: float) -> str:
    return f"{value:,.2f}" if value < 10 else f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _hours(o: Option, with_band: bool) -> str:
    if o.hours is None:
        return "—"
    band = o.hours_range if with_band else None
    return _hours_fmt(o.hours) + (f" ({_hours_fmt(band[0])}–{_hours_fmt(band[1])})" if band else "")


def _cost(o: Option, with_band: bool) -> str:
    return "$" + _number(o.cost_usd, o.cost_range_usd, "{:,.0f}", with_band) if o.cost_usd is not None else "—"


def basis_word(o: Option) -> str:
    """What backs the row (predict/order.py): measured, carried, or projected with or without a measured relative."""
    if o.basis != "projected":
        return o.backed_by
    return "projected, same arch" if "GPUs were" in (o.evidence or "") else "projected, no relative"


def basis_keys(options: list[Option]) -> dict[str, str]:
    """A one-letter key per basis word in use (two letters where the first is taken), in order of first use."""
    keys: dict[str, str] = {}
    for word in (basis_word(o) for o in options if not o.problem):
        if word not in keys:
            taken = set(keys.values())
            keys[word] = next((k for k in (word[:1].upper(), word[:2].capitalize()) if k not in taken), word)
    return keys


def machine(o: Option) -> str:
    """Provider (or yours / named) and the GPUs in one cell: `runpod 1× rtx4090`."""
    who = {"catalog": o.where.split(" ")[0], "named": "named"}.get(o.kind, o.where.split(" (")[0])
    return f"{'★ ' if o.pareto else ''}{who} {o.gpus}× {o.gpu}"


def shown(plan: Plan, show_all: bool) -> list[int]:
    """The 0-based ranks of the rows to show: all of them; else those within --max-hours and --budget when either is
    given, the Pareto front when neither is, and always the rows the limits' answers name and your own machines."""
    if show_all:
        return list(range(len(plan.options)))
    req = plan.request
    limited = req.max_hours is not None or req.budget_usd is not None
    limit_keys = ("cheapest_within_deadline", "fastest_within_budget", "own_machine")
    answered = {a.option for key in limit_keys if (a := plan.answers.get(key)) and a.option}

    def within(o: Option) -> bool:
        if o.hours is None or o.cost_usd is None:
            return False
        return (req.max_hours is None or o.hours <= req.max_hours) and (req.budget_usd is None or o.cost_usd <= req.budget_usd)

    def shown_anyway(o: Option) -> bool:  # a machine you named, with why it cannot run; yours that can
        return o.kind == "named" or (o.kind == "own" and not o.problem)

    def keep(rank: int, o: Option) -> bool:
        return (within(o) if limited else o.pareto) or rank in answered or shown_anyway(o)

    return [i for i, o in enumerate(plan.options) if keep(i + 1, o)]


Column = tuple[str, str, Callable[[int, Option], str]]  # header, justify, cell


def _columns(keys: dict[str, str], wide: bool, with_band: bool, full_where: bool) -> list[Column]:
    where: Column = ("where", "left", lambda i, o: ("★ " if o.pareto else "") + o.where)
    if not full_where:
        where = ("where", "left", lambda i, o: ("★ " if o.pareto else "") + o.where.split(" (")[0])
    head: list[Column] = [("#", "right", lambda i, o: str(i + 1))]
    head += [where, ("GPUs", "left", lambda i, o: f"{o.gpus}× {o.gpu}")] if wide else [("where", "left", lambda i, o: machine(o))]
    body: list[Column] = [
        ("batch×accum", "left", lambda i, o: config_text(o)),
        ("tok/s", "right", lambda i, o: f"{o.tokens_per_sec:,.0f}" if o.tokens_per_sec else "—"),
    ]
    if wide:
        body += [
            ("scaling", "right", lambda i, o: f"{o.scaling_efficiency:.2f}" if o.gpus > 1 and not o.problem else "—"),
            ("set-up h", "right", lambda i, o: f"{o.setup_hours:,.2f}" if o.setup_hours is not None else "—"),
        ]
    body += [
        ("hours (band)" if with_band else "hours", "right", lambda i, o: _hours(o, with_band)),
        ("cost (band)" if with_band else "cost", "right", lambda i, o: _cost(o, with_band)),
    ]
    tail: Column = ("basis", "left", lambda i, o: basis_word(o)) if wide else ("B", "left", lambda i, o: keys[basis_word(o)])
    return head + body + [tail]


def _table(plan: Plan, rows: list[int], columns: list[Column]) -> Table:
    table = row_table()
    for header, justify, _ in columns:
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for i in rows:
        o = plan.options[i]
        if o.problem:  # no figures: the reason, in the notes under the table
            cells = [cell(i, o) if n < 2 else "—" for n, (_, _, cell) in enumerate(columns)]
            table.add_row(*cells, style="dim")
            continue
        table.add_row(*(cell(i, o) for _, _, cell in columns), style="bold" if o.pareto else None)
    return one_line(table)


def options_table(plan: Plan, width: int, show_all: bool = False) -> Table:
    """The rows shown, cheapest first, one line each: the widest column set that fits `width` columns."""
    rows = shown(plan, show_all)
    keys = basis_keys([plan.options[i] for i in rows])
    layouts = [(True, True, True), (True, True, False), (False, True, False), (False, False, False)]
    return widest_that_fits([partial(_table, plan, rows, _columns(keys, w, b, f)) for w, b, f in layouts], width)


def legend(plan: Plan, table: Table, show_all: bool) -> str:
    """What the marks and keys mean, and how many rows are left out."""
    rows = shown(plan, show_all)
    parts = ["★ Pareto front: nothing both faster and cheaper", "hours include set-up"]
    if any(c.header == "B" for c in table.columns):
        keys = basis_keys([plan.options[i] for i in rows])
        parts.append("B: " + ", ".join(f"{k} {word}" for word, k in keys.items()))
    if len(rows) < len(plan.options):
        parts.append(f"{len(rows)} of {len(plan.options)} options shown (--all for every one)")
    return " · ".join(parts)


def note_lines(plan: Plan, show_all: bool = True) -> list[str]:
    """The notes and problems of the rows shown, by row number: labels for sharding and checkpointing, why a row has
    no figures, missing prices."""
    lines = []
    for i in shown(plan, show_all):
        o = plan.options[i]
        if o.problem or o.note:
            lines.append(f"#{i + 1} {o.where}: {o.problem or o.note}")
    return lines


def answer_lines(plan: Plan) -> list[str]:
    """The answers, in the order a reader asks them, each naming its row."""
    found = [plan.answers.get(key) for key in ANSWER_ORDER]
    return [f"{a.text} [#{a.option}]" if a.option else a.text for a in found if a]


def plan_view(plan: Plan, width: int, show_all: bool = False) -> RenderableType:
    """The whole terminal output: the answers, the table, its legend, the notes, the assumptions."""
    r = plan.request
    how = f" ({r.tokens_how.split(' (')[0]})" if r.tokens_how else ""
    head = f"gptbench plan · {r.tokens:,.0f} tokens{how} · model {r.model}"
    table = options_table(plan, width, show_all)
    parts: list[RenderableType] = [Text(head, style="bold"), bullets(answer_lines(plan), mark="→", indent=0)]
    parts += [Text(""), Text("options, cheapest first", style="bold"), table]
    parts += [bullets([legend(plan, table, show_all)], mark="", indent=0)]
    notes = note_lines(plan, show_all)
    if notes:
        parts += [Text("notes", style="bold"), bullets(notes, mark="", indent=0)]
    parts += [Text("assumptions", style="bold"), bullets(plan.assumptions)]
    return Group(*parts)
