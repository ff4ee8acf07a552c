"""Before a measuring command does any work: preload the allocator it asked for, by re-executing this command once.

The re-exec keeps the command line as the interpreter received it (`sys.orig_argv`: `python -m gptbench ...` and the
`gptbench` console script alike), stdin, stdout and the exit code (execve replaces this process, same id). It only
happens in a process started through `gptbench.cli.main`: a command invoked in-process (typer's CliRunner in the
tests, or a library user) never replaces its caller's process, and measures on the allocator it has.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from rich.markup import escape

from gptbench.cli.common import err
from gptbench.hardware import allocator

_entry = {"reexec_allowed": False}  # set by gptbench.cli.main: this process is the `gptbench` command itself


def allow_reexec() -> None:
    """Mark this process as the command's own (called by the console script and `python -m gptbench`)."""
    _entry["reexec_allowed"] = True


def likely_cpu_run(device: str) -> bool:
    """Whether `--device` will put the run on a CPU, decided without importing torch (so before any work):
    `auto` counts as a CPU run unless an NVIDIA driver lists a GPU or this is a Mac (MPS)."""
    key = device.strip().lower()
    if key != "auto":
        return key == "cpu"
    gpus = Path("/proc/driver/nvidia/gpus")
    return sys.platform != "darwin" and not (gpus.is_dir() and any(gpus.iterdir()))


def prepare_allocator(
    choice: str, device: str, execve: Callable[[str, list[str], dict[str, str]], None] = os.execve
) -> allocator.AllocatorPlan:
    """Apply `--allocator`: re-execute with LD_PRELOAD when the allocator needs a fresh process (once, and only as the
    command's own process); print its one-line warning, if any. Returns the plan."""
    in_use, _ = allocator.allocator_in_use()
    plan = allocator.plan_allocator(choice, likely_cpu_run(device), os.environ, in_use, allocator.installed())
    if plan.warning and not plan.reexec:  # after a re-exec the new process says it, once
        err.print(f"[yellow]warning:[/yellow] {escape(plan.warning)}", highlight=False, soft_wrap=True)
    if plan.reexec and _entry["reexec_allowed"]:
        sys.stdout.flush()
        sys.stderr.flush()
        execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], plan.env)
    return plan
