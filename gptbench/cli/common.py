"""What every command shares: the typer app, the two consoles, and the one exit for errors."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Annotated, Any, TypeVar, cast

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from gptbench.errors import GptbenchError, Stopped, WriteFailed, stop_signal

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
T = TypeVar("T")
# The files this command could not write (said on stderr as each failed): the command still prints its result,
# then exits 1. Reset by `friendly` at the start of each command.
_unwritten: list[WriteFailed] = []


def say_unwritten(failure: WriteFailed) -> None:
    """One line naming the file and the OS's reason; the command then goes on to print its result and exits 1."""
    _unwritten.append(failure)
    err.print(f"[red]error:[/red] {escape(str(failure))}; the result is printed instead", highlight=False, soft_wrap=True)


def warn(lines: list[str]) -> None:
    """Each line as a yellow warning on stderr (stdout keeps the result, or the JSON, alone)."""
    for line in lines:
        err.print(f"[yellow]warning:[/yellow] {escape(line)}", highlight=False, soft_wrap=True)


def kept(write: Callable[[], T]) -> T | None:
    """`write()`'s value, or None when it could not write its file (said in a line; the command will exit 1)."""
    try:
        return write()
    except WriteFailed as e:
        say_unwritten(e)
        return None


_received: list[int] = []  # the stop signals this command received, in order


def _raise_stopped(signum: int, frame: object) -> None:
    _received.append(signum)
    raise Stopped(signum)


def last_stop_signal() -> int:
    """The last stop signal received (SIGINT when none came through the handler: Ctrl-C's own KeyboardInterrupt)."""
    return _received[-1] if _received else signal.SIGINT


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise Stopped (a KeyboardInterrupt) where the program is: a measurement keeps its steps
    and `subprocess.run` kills its child on the way out. SIGTERM's default would end the process at once, leaving
    its children running and its measurement unsaved."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers are the main thread's alone
        yield
        return
    previous = {s: signal.signal(s, _raise_stopped) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def exit_for(error: BaseException) -> typer.Exit:
    """The exit of a command ended by a stop signal: 128 + its number (130 for SIGINT, 143 for SIGTERM)."""
    return typer.Exit(128 + stop_signal(error))


def friendly(fn: F) -> F:
    """Turn a GptbenchError into one red line and exit code 2; SIGINT (Ctrl-C) and SIGTERM into exit codes 130 and
    143; a file that could not be written (see `kept`) into exit code 1 once the result is printed."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _unwritten.clear()
        _received.clear()
        try:
            with stop_signals_raise():
                value = fn(*args, **kwargs)
        except WriteFailed as e:  # a write no command caught: said, but its result could not be printed
            err.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except GptbenchError as e:
            error_line(str(e))
            raise typer.Exit(2) from None
        except KeyboardInterrupt as e:
            err.print(f"[yellow]interrupted[/yellow] ({e if isinstance(e, Stopped) else 'SIGINT'})", highlight=False)
            raise exit_for(e) from None
        if _unwritten:
            raise typer.Exit(1)
        return value

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
