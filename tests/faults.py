"""A fault-injecting filesystem layer for the tests: the OS calls a write makes (mkdir, creating the temporary file,
write, fsync, link, rename) fail with a chosen errno, but only for paths under one folder, so pytest and everything
else keep working. A real full disk (tmpfs) is in tests/test_faults.py."""

from __future__ import annotations

import errno
import os
import pathlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ERRNOS = {"ENOSPC": errno.ENOSPC, "EROFS": errno.EROFS, "EACCES": errno.EACCES, "ENOENT": errno.ENOENT}
# Where a write can fail: making the folder, creating the temporary file, writing it, syncing it, giving it its
# name without overwriting (link, or the exclusive open of a filesystem without hard links), renaming it over a file.
POINTS = ("mkdir", "create", "write", "fsync", "link", "replace")


def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


class _FailingWrites:
    """A binary file whose writes fail; everything else is the real file's."""

    def __init__(self, real: Any, fail: Callable[[], None]) -> None:
        self._real, self._fail = real, fail

    def write(self, data: bytes) -> int:
        self._fail()
        return 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def __enter__(self) -> _FailingWrites:
        return self

    def __exit__(self, *exc: object) -> None:
        self._real.close()


class Faults:
    """Counts the write calls under `folder` at `point` and fails those after the first `after` with `code`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, folder: Path, point: str, code: int, after: int = 0) -> None:
        self.folder, self.code, self.after, self.calls = str(folder), code, after, 0
        if point not in POINTS:
            raise ValueError(point)
        real_mkdir, real_open, real_fdopen = pathlib.Path.mkdir, os.open, os.fdopen
        real_fsync, real_link, real_replace = os.fsync, os.link, os.replace

        def mkdir(self_: Path, *args: Any, **kwargs: Any) -> None:
            self.check(str(self_))
            real_mkdir(self_, *args, **kwargs)

        def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            final = not str(path).endswith(".tmp")  # the exclusive open that claims a final name (no hard links)
            if (point == "create" and not final) or (point == "link" and final and flags & os.O_EXCL):
                self.check(str(path))
            return real_open(path, flags, *args, **kwargs)

        def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
            real = real_fdopen(fd, *args, **kwargs)
            return _FailingWrites(real, self.fail) if self.hit(_fd_path(fd)) else real

        def fsync(fd: int) -> None:
            self.check(_fd_path(fd))
            real_fsync(fd)

        def link(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
            self.check(str(dst))
            real_link(src, dst, *args, **kwargs)

        def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
            self.check(str(dst))
            real_replace(src, dst, *args, **kwargs)

        patches = {"mkdir": (pathlib.Path, "mkdir", mkdir), "write": (os, "fdopen", fdopen), "fsync": (os, "fsync", fsync)}
        patches.update({"link": (os, "link", link), "replace": (os, "replace", replace)})
        if point in ("create", "link"):
            monkeypatch.setattr(os, "open", open_)
        if point in patches:
            monkeypatch.setattr(*patches[point])

    def hit(self, path: str) -> bool:
        """Whether this call (on `path`) is one that fails."""
        if not path.startswith(self.folder):
            return False
        self.calls += 1
        return self.calls > self.after

    def fail(self) -> None:
        raise OSError(self.code, os.strerror(self.code))

    def check(self, path: str) -> None:
        if self.hit(path):
            self.fail()


def leftovers(folder: Path) -> list[str]:
    """Temporary files left in `folder` (and below)."""
    return sorted(p.name for p in folder.rglob("*.tmp")) if folder.exists() else []
