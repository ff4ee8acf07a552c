"""What a probe writes while it runs, kept for its check instead of reaching the doctor's screen.

torch speaks on its own during some probes: `torch.utils.cpp_extension` logs "No CUDA runtime is found, using
CUDA_HOME=…" through the `logging` module when inductor first looks for a compiler, and C++ code writes to file
descriptor 2 directly. So the capture is at three levels: the "torch" logger's records, Python's sys.stdout and
sys.stderr, and file descriptors 1 and 2 (os.dup2 onto a temporary file)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Captured:
    """The lines a probe wrote, filled in when the capture ends."""

    lines: list[str] = field(default_factory=list)

    def text(self, limit: int = 300) -> str:
        """The lines as one line (for a check's value), cut at `limit` characters."""
        joined = "; ".join(self.lines)
        return joined if len(joined) <= limit else joined[: limit - 1] + "…"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _torch_records() -> Iterator[_Records]:
    """Every record of the "torch" logger tree goes to the returned handler alone for the duration."""
    logger, handler = logging.getLogger("torch"), _Records()
    saved = logger.handlers[:], logger.propagate
    logger.handlers, logger.propagate = [handler], False
    try:
        yield handler
    finally:
        logger.handlers, logger.propagate = saved


@contextlib.contextmanager
def _descriptors(sink: io.BufferedRandom) -> Iterator[None]:
    """File descriptors 1 and 2 pointed at `sink` for the duration (where they exist), then restored."""
    saved: list[tuple[int, int]] = []
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a stream without a descriptor: nothing below it to redirect
            stream.flush()
    try:
        for fd in (1, 2):
            with contextlib.suppress(OSError):  # closed in this process: nothing can be written there anyway
                saved.append((fd, os.dup(fd)))
                os.dup2(sink.fileno(), fd)
        yield
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)


@contextlib.contextmanager
def captured() -> Iterator[Captured]:
    """Run the body with torch's log records, sys.stdout/sys.stderr and descriptors 1 and 2 all captured; the
    non-empty lines are in the returned Captured once the body has finished."""
    found = Captured()
    python_text = io.StringIO()
    with tempfile.TemporaryFile() as sink, _torch_records() as records:
        try:
            with _descriptors(sink), contextlib.redirect_stdout(python_text), contextlib.redirect_stderr(python_text):
                yield found
        finally:
            sink.seek(0)
            text = "\n".join([*records.messages, python_text.getvalue(), sink.read().decode(errors="replace")])
            found.lines[:] = [line.strip() for line in text.splitlines() if line.strip()]
