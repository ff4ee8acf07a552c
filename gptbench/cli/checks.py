"""Option values checked as they are parsed, before a command does any work.

An option names its check with `callback=`: `typer.Option(help=..., callback=whole(1, STEPS_MAX))`. A check sees the
value typer parsed (None when the option was left out) and raises a GptbenchError naming the flag, which the app's one
exit (common.py) prints as one red line with exit code 2. Checks that need two options (`--memory-limit` means
something only with `--batch auto`) use `only_with` in the command, before its one library call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import typer

from gptbench.errors import GptbenchError

# Upper bounds, far above any real use, so a slip of the keyboard is refused instead of hanging or overflowing.
STEPS_MAX = 10_000_000  # a whole GPT-2 124M run over FineWeb-10B is 19,073 steps of 524,288 tokens (llm.c)
BATCH_MAX = 1_000_000  # micro-batch, max-batch, grad-accum: a million sequences per step
SEQ_MAX = 1_000_000  # a preset's block size (1024) or a factory's context bounds it further
SHAPE_MAX = 100_000  # layers, heads; gptbench builds the blocks one by one, so 10^20 layers would never finish
WIDTH_MAX = 1_000_000  # embedding width
VOCAB_MAX = 100_000_000
GPUS_MAX = 100_000  # GPUs of one planned run: the largest training clusters hold about that many
CPUS_MAX = 4096  # threads or worker processes: more than any machine's logical CPUs (more only oversubscribe them)
NPROC_MAX = 1024  # processes of one `run --nproc`; check_nproc then holds it to the GPUs there are
COUNT_MAX = 2**31 - 1  # any other whole number (GPUs, workers, indices): what a 32-bit index holds
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1  # torch.manual_seed's documented range (torch 2.x docs)
SECONDS_MAX = 7 * 24 * 3600.0  # a probe step, a peak budget, a rank's wait: more than a week is a typo

Check = Callable[[typer.Context, typer.CallbackParam, Any], Any]


def flag(param: typer.CallbackParam) -> str:
    """The option as the user types it: --steps."""
    return param.opts[0] if param.opts else str(param.name)


def whole(low: int = 1, high: int = COUNT_MAX) -> Check:
    """A whole number from `low` to `high` (inclusive), or the option left out."""

    def check(ctx: typer.Context, param: typer.CallbackParam, value: int | None) -> int | None:
        if value is not None and not low <= value <= high:
            raise GptbenchError(f"{flag(param)} {value}: give a whole number from {low:,} to {high:,}")
        return value

    return check


def number(low: float = 0.0, high: float = math.inf, *, low_open: bool = True, high_open: bool = False) -> Check:
    """A finite number in the range (`low_open`: `low` itself excluded; `high_open`: `high` excluded); nan and
    infinity are refused everywhere."""

    def check(ctx: typer.Context, param: typer.CallbackParam, value: float | None) -> float | None:
        if value is None:
            return None
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if not (math.isfinite(value) and above and below):
            finite = "" if math.isfinite(value) else "a finite number: "
            raise GptbenchError(f"{flag(param)} {value:g}: give {finite}{_range_words(low, high, low_open, high_open)}")
        return value

    return check


def _range_words(low: float, high: float, low_open: bool, high_open: bool) -> str:
    if math.isinf(high):
        return f"a number above {low:g}" if low_open else f"a number of {low:g} or more"
    start = f"a number above {low:g}, " if low_open else f"a number from {low:g} "
    return start + (f"up to (not including) {high:g}" if high_open else f"up to {high:g}")


def one_of(*choices: str) -> Check:
    """One of `choices`, compared without case or surrounding spaces (a library that needs the exact spelling checks it)."""

    def check(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
        if value is not None and value.strip().lower() not in choices:
            raise GptbenchError(f"{flag(param)} {value}: choose one of {', '.join(choices)}")
        return value

    return check


POSITIVE = number(0.0)  # more than zero, finite
NON_NEGATIVE = number(0.0, low_open=False)  # zero or more, finite
SECONDS = number(0.0, SECONDS_MAX)
SEED = whole(SEED_MIN, SEED_MAX)


def given(ctx: typer.Context, name: str) -> bool:
    """Whether the option called `name` (the Python name: memory_limit) was given on the command line."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


def only_with(ctx: typer.Context, names: tuple[str, ...], condition: bool, needs: str) -> None:
    """Refuse any of the options `names` given on the command line when `condition` is false: they would be ignored.
    `needs` says what makes them matter (e.g. "--batch auto")."""
    if condition:
        return
    flags = {p.name: p.opts[0] for p in ctx.command.params if p.opts}
    for name in names:
        if given(ctx, name):
            raise GptbenchError(f"{flags[name]} would be ignored: it applies only with {needs}")
