"""What went wrong in a failed run: `oom` or `error`, read from the whole exception chain (an out-of-memory error
inside torch.compile's wrapper is only visible further down it; see `gptbench.errors.chain`)."""

from __future__ import annotations

from gptbench.errors import chain, innermost_message

OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory", "outofmemoryerror")


def is_oom(error: BaseException) -> bool:
    """Whether any exception in the chain is an out-of-memory error (by type, or by the allocator's words)."""
    for e in chain(error):
        if type(e).__name__ == "OutOfMemoryError" or isinstance(e, MemoryError):
            return True
        if any(marker in f"{type(e).__name__}: {e}".lower() for marker in OOM_MARKERS):
            return True
    return False


def describe_failure(error: BaseException) -> tuple[str, str]:
    """(status, message) for a report: `oom` when any link of the chain ran out of memory, else `error`."""
    return ("oom" if is_oom(error) else "error"), innermost_message(error)
