"""What every command shares: the typer app, the two consoles, and the one exit for errors."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from gptbench.errors import GptbenchError

app = typer.Typer(
    help="How fast does this machine train GPT-2, and what would a whole run cost?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Help groups: measure this machine, decide what to run where, prepare data.
MEASURE, DECIDE, DATA = "Measure this machine", "Decide: time, money, machines", "Data"
out = Console()
err = Console(stderr=True)

# Any: a command of any signature, its arguments and result passed through untouched; `friendly` keeps its type.
F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Turn a GptbenchError into one red line and exit code 2; Ctrl-C into exit code 130."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GptbenchError as e:
            err.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
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
