"""What a plan answers: the Pareto front (no other option both faster and cheaper), and "cheapest by the deadline",
"fastest within the budget", "on your own machine", each with its band; when nothing meets a limit, the nearest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from gptbench.cloud.options import Option, PlanRequest

By = Callable[[Option], float]  # what an answer minimises: cost or hours


@dataclass(frozen=True)
class Answer:
    """One question answered: the sentence, and the numbers of the option that answers it, so a script reads them
    instead of the prose. `option` is the option's 1-based rank in the plan (the table's #)."""

    question: str
    met: bool  # False: nothing meets the limit, and the option is the nearest outside it
    text: str
    where: str | None = None
    option: int | None = None
    gpu: str | None = None
    gpus: int | None = None
    hours: float | None = None
    hours_range: tuple[float, float] | None = None
    cost_usd: float | None = None
    cost_range_usd: tuple[float, float] | None = None
    basis: str | None = None  # what backs the option: measured | carried | projected | measured, scaled (1 GPU)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data; bands as [low, high] lists."""
        data = asdict(self)
        for key in ("hours_range", "cost_range_usd"):
            data[key] = list(data[key]) if data[key] else None
        return data


def answer(question: str, met: bool, text: str, o: Option, options: list[Option]) -> Answer:
    """The answer `text` given by option `o`, with its numbers and its rank among `options`."""
    return Answer(
        question, met, text, o.where, options.index(o) + 1, o.gpu, o.gpus, o.hours, o.hours_range, o.cost_usd,
        o.cost_range_usd, o.backed_by,
    )  # fmt: skip


def pareto(options: list[Option]) -> list[Option]:
    """Marks the options no other option beats on both time and cost (an option with no figures is never marked)."""
    priced = [o for o in options if o.hours is not None and o.cost_usd is not None]

    def beaten(o: Option) -> bool:
        return any(
            p.hours <= o.hours and p.cost_usd <= o.cost_usd and (p.hours < o.hours or p.cost_usd < o.cost_usd)  # type: ignore[operator]
            for p in priced
        )

    return [replace(o, pareto=o in priced and not beaten(o)) for o in options]


def _band(o: Option) -> str:
    h, c = o.hours_range, o.cost_range_usd
    text = f"{h[0]:,.1f}–{h[1]:,.1f} h" if h else ""
    return text + (f", ${c[0]:,.0f}–{c[1]:,.0f}" if c else "")


def describe(o: Option) -> str:
    """An option in one line: where, configuration, time and cost with the band."""
    cost = f"${o.cost_usd:,.2f}" if o.cost_usd is not None else "cost unknown"
    layout = f", {o.sharding} sharding" if o.sharding != "none" else ""
    layout += ", activation checkpointing" if o.activation_checkpointing else ""
    return (
        f"{o.where}: {o.gpus}× {o.gpu}, micro-batch {o.micro_batch} × accum {o.grad_accum}{layout}, "
        f"{o.hours:,.1f} h for {cost} ({o.backed_by}; band {_band(o)})"
    )


def _cost(o: Option) -> float:
    return o.cost_usd if o.cost_usd is not None else float("inf")


def _hours(o: Option) -> float:
    return o.hours if o.hours is not None else float("inf")


def _within(
    key: str, within: list[Option], best: By, said: str, others: list[Option], near: By, none: str, options: list[Option]
) -> Answer | None:
    """The best option within a limit; else the nearest outside it, said plainly; None when there are no options."""
    if within:
        chosen = min(within, key=best)
        return answer(key, True, f"{said}: {describe(chosen)}", chosen, options)
    if not others:
        return None
    chosen = min(others, key=near)
    return answer(key, False, f"{none} {describe(chosen)}", chosen, options)


def answers(req: PlanRequest, options: list[Option]) -> dict[str, Answer | None]:
    """The questions a plan answers, each naming its option by rank in `options` (already in the plan's order); when
    nothing meets a deadline or budget, the nearest option, said plainly."""
    usable = [o for o in options if o.hours is not None]
    priced = [o for o in usable if o.cost_usd is not None]
    result: dict[str, Answer | None] = {"cheapest_within_deadline": None, "fastest_within_budget": None}
    if req.max_hours is not None:
        limit = f"within {req.max_hours:g} h"
        within = [o for o in priced if o.hours <= req.max_hours]  # type: ignore[operator]
        result["cheapest_within_deadline"] = _within(
            "cheapest_within_deadline", within, _cost, f"cheapest that finishes {limit}", usable, _hours,
            f"nothing finishes {limit}; the fastest is", options,
        )  # fmt: skip
    if req.budget_usd is not None:
        limit = f"${req.budget_usd:,.2f}"
        within = [o for o in priced if o.cost_usd <= req.budget_usd]  # type: ignore[operator]
        result["fastest_within_budget"] = _within(
            "fastest_within_budget", within, _hours, f"fastest within {limit}", priced, _cost,
            f"nothing costs {limit} or less; the cheapest is", options,
        )  # fmt: skip
    for key, pool, pick, what in (
        ("cheapest", priced, _cost, "cheapest"),
        ("fastest", usable, _hours, "fastest"),
        ("own_machine", [o for o in usable if o.kind == "own"], _hours, "on your own machine"),
    ):
        best = min(pool, key=pick) if pool else None
        result[key] = answer(key, True, f"{what}: {describe(best)}", best, options) if best else None
    return result
