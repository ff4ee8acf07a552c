"""The host memory allocator of a run: find tcmalloc or jemalloc, decide whether to preload one, and say which is in use.

On a CPU, glibc's malloc returns the step's large buffers (logits, activations) to the operating system and
page-faults them back in on the next step; tcmalloc keeps them. Preloading needs a fresh process, so a command
re-executes itself once with LD_PRELOAD set, as PyTorch's own CPU launcher does
(torch/backends/xeon/run_cpu.py: `add_lib_preload` and `set_memory_allocator`). This module never imports torch:
the decision is taken before any work, and `doctor` may call `allocator_status()` cheaply.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gptbench.errors import GptbenchError

ALLOCATORS = ("auto", "system", "tcmalloc", "jemalloc")
# Set for the re-executed process to its own process id (execve keeps the id): a process that finds its id there
# was already re-executed and never does it again; its children (workers, torchrun ranks) may decide for themselves.
REEXEC_ENV = "GPTBENCH_ALLOCATOR_REEXEC"
INSTALL_HINT = {
    "tcmalloc": "apt-get install libtcmalloc-minimal4",
    "jemalloc": "apt-get install libjemalloc2",
}
# File names, best first: torch's launcher looks for the unversioned lib<name>.so only (a -dev package's link);
# Debian and Ubuntu runtime packages install the versioned names, and libtcmalloc-minimal4 only the minimal build.
LIBRARY_NAMES = {
    "tcmalloc": ("libtcmalloc.so", "libtcmalloc.so.4", "libtcmalloc_minimal.so", "libtcmalloc_minimal.so.4"),
    "jemalloc": ("libjemalloc.so", "libjemalloc.so.2"),
}
# Settings that go with a preload: tcmalloc would print a line for every allocation over 1 GB (a large
# model's logits), which is noise in a benchmark's output.
PRELOAD_ENV = {"tcmalloc": {"TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(1 << 40)}, "jemalloc": {}}


def search_dirs(environ: Mapping[str, str]) -> list[Path]:
    """Where to look, in order: the folders torch's launcher searches, then the distribution's multiarch folder."""
    dirs = [Path(environ[v]) / "lib" for v in ("CONDA_PREFIX", "VIRTUAL_ENV") if environ.get(v)]
    dirs += [Path("~/.local/lib").expanduser(), Path("/usr/local/lib"), Path("/usr/local/lib64"), Path("/usr/lib")]
    dirs.append(Path("/usr/lib64"))
    multiarch = sysconfig.get_config_var("MULTIARCH")  # x86_64-linux-gnu, aarch64-linux-gnu, ...
    if multiarch:
        dirs += [Path("/usr/lib") / multiarch, Path("/lib") / multiarch]
    return dirs


def find_library(name: str, environ: Mapping[str, str] | None = None, dirs: list[Path] | None = None) -> Path | None:
    """The first installed library file of allocator `name` (tcmalloc or jemalloc), or None."""
    env = os.environ if environ is None else environ
    for folder in search_dirs(env) if dirs is None else dirs:
        for file_name in LIBRARY_NAMES[name]:
            path = folder / file_name
            if path.is_file():
                return path
    return None


def installed(environ: Mapping[str, str] | None = None, dirs: list[Path] | None = None) -> dict[str, Path]:
    """Every faster allocator found on this machine: name -> library path."""
    found = {name: find_library(name, environ, dirs) for name in LIBRARY_NAMES}
    return {name: path for name, path in found.items() if path is not None}


def loaded_allocator(maps_text: str) -> tuple[str, str | None]:
    """(allocator, library path) from the text of /proc/<pid>/maps: which malloc the process really runs on."""
    for line in maps_text.splitlines():
        path = line.split()[-1] if line.strip() else ""
        base = os.path.basename(path)
        for name in LIBRARY_NAMES:
            if base.startswith(f"lib{name}"):
                return name, path
    return "system", None


def allocator_in_use() -> tuple[str, str | None]:
    """(allocator, library path) of this process: tcmalloc, jemalloc or system (glibc's malloc, or the OS's)."""
    try:
        return loaded_allocator(Path("/proc/self/maps").read_text())
    except OSError:
        return "system", None  # no /proc (macOS, Windows): nothing was preloaded by gptbench either


@dataclass(frozen=True)
class AllocatorStatus:
    """What `doctor` shows: the allocator of this process, the faster ones installed, and how to get one."""

    in_use: str  # tcmalloc | jemalloc | system
    in_use_path: str | None  # the preloaded library, None for the system allocator
    installed: dict[str, str] = field(default_factory=dict)  # tcmalloc/jemalloc -> library path, where found
    install_command: str | None = None  # Debian/Ubuntu command to get tcmalloc, when it is missing
    note: str = ""  # one line for a person


def allocator_status() -> AllocatorStatus:
    """The allocator in use in this process, the faster ones installed (with paths), and the install command if none."""
    name, path = allocator_in_use()
    found = {k: str(v) for k, v in installed().items()}
    command = None if "tcmalloc" in found else INSTALL_HINT["tcmalloc"]
    if name == "tcmalloc":
        note = "tcmalloc is in use"
    elif "tcmalloc" in found:
        note = f"tcmalloc is installed ({found['tcmalloc']}); CPU runs preload it (--allocator auto)"
    else:
        note = f"CPU runs use the system allocator; install tcmalloc and they preload it (see docs/run.md, CPU runs): {command}"
    return AllocatorStatus(name, path, found, command, note)


@dataclass(frozen=True)
class AllocatorPlan:
    """What a measuring command does about its allocator before any work."""

    allocator: str  # what the run will use: tcmalloc | jemalloc | system
    library: Path | None  # the library to preload, if any
    reexec: bool  # start this command again with `env` (the allocator needs a fresh process)
    env: dict[str, str] = field(default_factory=dict)  # the environment of the re-executed process
    warning: str | None = None  # one line for the user (a missing library, a re-exec that did not take)


def plan_allocator(
    choice: str,
    cpu_run: bool,
    environ: Mapping[str, str],
    in_use: str,
    libraries: Mapping[str, Path],
    platform: str = sys.platform,
    pid: int | None = None,
) -> AllocatorPlan:
    """Decide the allocator from `--allocator`, without side effects. `cpu_run`: the run is on a CPU (auto preloads
    only there: a GPU run's host allocations are off its critical path). `in_use`: this process's allocator;
    `libraries`: the installed ones; `pid`: this process's id. An explicit choice whose library is missing is an error."""
    pid = os.getpid() if pid is None else pid
    if choice not in ALLOCATORS:
        raise GptbenchError(f"--allocator {choice}: choose one of {', '.join(ALLOCATORS)}")
    if not platform.startswith("linux"):
        if choice in ("tcmalloc", "jemalloc"):
            raise GptbenchError(f"--allocator {choice}: preloading an allocator is supported on Linux only; use auto")
        return AllocatorPlan(in_use, None, reexec=False)
    if choice == "auto":
        want = "tcmalloc" if cpu_run and "tcmalloc" in libraries else in_use
        missing = cpu_run and "tcmalloc" not in libraries and in_use == "system"
        warning = f"tcmalloc is not installed; CPU runs are faster with it: {INSTALL_HINT['tcmalloc']}" if missing else None
    else:
        want, warning = choice, None
        if want != "system" and want not in libraries:
            raise GptbenchError(
                f"--allocator {want}: lib{want} is not installed (looked where torch's CPU launcher looks, and in "
                f"the system's library folder); install it ({INSTALL_HINT[want]}) or use --allocator auto"
            )
    if want == in_use:
        return AllocatorPlan(want, libraries.get(want), reexec=False, warning=warning)
    if environ.get(REEXEC_ENV) == str(pid):  # this is the re-executed process and it still lacks it: never loop
        note = f"--allocator {choice}: {want} did not load after a restart with LD_PRELOAD; measuring with {in_use}"
        return AllocatorPlan(in_use, None, reexec=False, warning=note)
    library = libraries.get(want)
    env = {**preload_env(environ, library, want), REEXEC_ENV: str(pid)}
    return AllocatorPlan(want, library, reexec=True, env=env, warning=warning)


def preload_env(environ: Mapping[str, str], library: Path | None, name: str) -> dict[str, str]:
    """`environ` with LD_PRELOAD naming `library` first and no other allocator (for `system`: none)."""
    kept = [p for p in environ.get("LD_PRELOAD", "").replace(" ", ":").split(":") if p and not _is_allocator(p)]
    env = {k: v for k, v in environ.items() if k != "LD_PRELOAD"}
    preload = ([str(library)] if library else []) + kept
    if preload:
        env["LD_PRELOAD"] = ":".join(preload)
    env.update(PRELOAD_ENV.get(name, {}))
    return env


def _is_allocator(path: str) -> bool:
    return any(os.path.basename(path).startswith(f"lib{name}") for name in LIBRARY_NAMES)


def worker_env(allocator: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker process that must run on `allocator` (a ladder rung may differ from its parent)."""
    env = os.environ if environ is None else environ
    library = None if allocator == "system" else find_library(allocator, env)
    if allocator != "system" and library is None:
        raise GptbenchError(f"lib{allocator} is not installed: {INSTALL_HINT[allocator]}")
    return preload_env(env, library, allocator)
