"""What went wrong in a failed run, read from the whole exception chain. torch.compile wraps the real failure:
Dynamo raises `BackendCompilerFailed("backend='inductor' raised:\\n<type>: <message>")` from the inner exception
(torch/_dynamo/exc.py), so the first line of the outer message says nothing, and an out-of-memory error inside
it is only visible further down the chain."""

from __future__ import annotations

from collections.abc import Iterator

OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory", "outofmemoryerror")
WRAPPER_LINES = ("backend='inductor' raised:", "backend=", "while executing", "set torch_logs")


def chain(error: BaseException) -> Iterator[BaseException]:
    """`error`, then its causes (`raise ... from`) and contexts (raised while handling), outermost first."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        inner = getattr(current, "inner_exception", None)  # BackendCompilerFailed keeps it here as well
        current = current.__cause__ or inner or current.__context__


def is_oom(error: BaseException) -> bool:
    """Whether any exception in the chain is an out-of-memory error (by type, or by the allocator's words)."""
    for e in chain(error):
        if type(e).__name__ == "OutOfMemoryError" or isinstance(e, MemoryError):
            return True
        if any(marker in f"{type(e).__name__}: {e}".lower() for marker in OOM_MARKERS):
            return True
    return False


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


def describe_failure(error: BaseException) -> tuple[str, str]:
    """(status, message) for a report: `oom` when any link of the chain ran out of memory, else `error`."""
    return ("oom" if is_oom(error) else "error"), innermost_message(error)
