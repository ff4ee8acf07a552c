"""What every command shares: the typer app, the two consoles, and the one exit for errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Annotated, Any, TypeVar, cast

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from gptbench.errors import GptbenchError

# click's UsageError (an unknown option, a value of the wrong type, a missing value), whether typer vendors click
# (typer._click, typer >= 0.2x) or uses click itself: BadParameter's base either way.
UsageError = cast("type[typer.BadParameter]", typer.BadParameter.__base__)  # typed as the subclass: format_message is the base's

out = Console()
err = Console(stderr=True)


def error_line(message: str) -> None:
    """The one red line every refused input ends in (on stderr)."""
    err.print(f"[red]error:[/red] {escape(' '.join(message.split()))}", highlight=False, soft_wrap=True)


class OneLineErrors(TyperGroup):
    """The app's commands, with click's usage errors and the option checks' errors (gptbench/cli/checks.py) raised
    while the command line is parsed turned into one red line and exit code 2, like every other refused input."""

    # Any: click's Context, typer's vendored one or click's own (above), as the parent class takes and gives it.
    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _one_line():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _one_line():
            return super().invoke(ctx)


@contextmanager
def _one_line() -> Iterator[None]:
    try:
        yield
    except GptbenchError as e:
        error_line(str(e))
        raise typer.Exit(2) from None
    except UsageError as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # bare `gptbench`: typer prints the help
            raise
        where = getattr(e, "ctx", None)
        hint = f" (see {where.command_path} --help)" if where is not None else ""
        error_line(e.format_message() + hint)
        raise typer.Exit(2) from None


app = typer.Typer(
    cls=OneLineErrors,
    help="How fast does this machine train GPT-2, and what would a whole run cost?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Help groups: measure this machine, decide what to run where, prepare data.
MEASURE, DECIDE, DATA = "Measure this machine", "Decide: time, money, machines", "Data"

# Any: a command of any signature, its arguments and result passed through untouched; `friendly` keeps its type.
F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Turn a GptbenchError into one red line and exit code 2; Ctrl-C into exit code 130."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GptbenchError as e:
            error_line(str(e))
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/yellow]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        import gptbench

        out.print(f"gptbench {gptbench.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
) -> None:
    """How fast does this machine train GPT-2, and what would a whole run cost?"""
