"""The `gptbench` command line: each command turns options into a config, calls one library function, and prints
a view. One module per command (series.py: sweep and ablate), all registered on the one typer app in common.py
(with the one exit for refused input); options.py holds the shared options and their parsing, checks.py the checks
an option names to be refused as it is parsed, progress.py the live display, preload.py the allocator re-exec,
ddp.py the options and displays of `run --nproc` (its orchestration: bench/ranks.py).
"""

# isort: off
# Importing a module registers its commands; this order is the order of `gptbench --help`.
from gptbench.cli import run, series, peak, suite, doctor, chapter5  # noqa: F401
from gptbench.cli import estimate, plan, compare  # noqa: F401
from gptbench.cli import prepare  # noqa: F401

# isort: on
from gptbench.cli.common import app


def main() -> None:
    """Entry point of the `gptbench` console script and `python -m gptbench`."""
    from gptbench.cli.preload import allow_reexec

    allow_reexec()  # this process is the command itself: it may restart once with a preloaded allocator
    app()
