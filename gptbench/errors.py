"""The one error type a user sees (its message says what is wrong and how to fix it), and how to read any other
exception in a line. torch.compile wraps the real failure: Dynamo raises
`BackendCompilerFailed("backend='inductor' raised:\\n<type>: <message>")` from the inner exception
(torch/_dynamo/exc.py), so the first line of the outer message says nothing and the cause is further down the chain."""

from __future__ import annotations

from collections.abc import Iterator

WRAPPER_LINES = ("backend='inductor' raised:", "backend=", "while executing", "set torch_logs")


class GptbenchError(Exception):
    """Bad input or an unusable environment; the CLI prints the message in one line and exits 2."""


def chain(error: BaseException) -> Iterator[BaseException]:
    """`error`, then its causes (`raise ... from`) and contexts (raised while handling), outermost first."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        inner = getattr(current, "inner_exception", None)  # BackendCompilerFailed keeps it here as well
        current = current.__cause__ or inner or current.__context__


def innermost_message(error: BaseException, limit: int = 500) -> str:
    """The innermost exception's message, as `Type: first meaningful line`; the wrappers' words are dropped."""
    inner = list(chain(error))[-1]
    lines = [line.strip() for line in str(inner).strip().splitlines() if line.strip()]
    meaningful = [line for line in lines if not line.lower().startswith(WRAPPER_LINES)]
    text = meaningful[0] if meaningful else (lines[0] if lines else "")
    name = type(inner).__name__
    message = f"{name}: {text}" if text and not text.startswith(name) else (text or name)
    return message[:limit]


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type's name when it has none), cut to `limit`."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__


class WriteFailed(GptbenchError):
    """A file could not be written (disk full, read-only, no permission, folder gone): `path` and the OS's reason.
    The measurement it would have held is still in memory: the CLI says this in a line, prints the result, exits 1."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path, self.reason = path, reason


class Stopped(KeyboardInterrupt):
    """A stop signal (SIGINT, SIGTERM) raised where the program is, like Ctrl-C's KeyboardInterrupt, so that what was
    measured is kept and child processes are stopped on the way out. Exit code 128 + `signum` (130, 143)."""

    def __init__(self, signum: int, message: str | None = None) -> None:
        super().__init__(message or signal_name(signum))
        self.signum = signum


def signal_name(signum: int) -> str:
    """`SIGTERM` for 15."""
    import signal

    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def stop_signal(error: BaseException) -> int:
    """The signal behind an interrupt: a Stopped's own, else SIGINT (Ctrl-C's KeyboardInterrupt)."""
    return getattr(error, "signum", 2)
