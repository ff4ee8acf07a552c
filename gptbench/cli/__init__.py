"""The `gptbench` command line: each command turns options into a config, calls the library, renders.

One module per command, all registered on the one typer app in `common`.
"""

from gptbench.cli import (
    compare,  # noqa: F401
    estimate,  # noqa: F401
    peak,  # noqa: F401
    prepare,  # noqa: F401
    run,  # noqa: F401  (registers the command)
    series,  # noqa: F401
)
from gptbench.cli.common import app


def main() -> None:
    """Entry point of the `gptbench` console script and `python -m gptbench`."""
    app()
