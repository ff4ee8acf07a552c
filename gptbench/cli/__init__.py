"""The `gptbench` command line: each command turns options into a config, calls the library, renders.

One module per command, all registered on the one typer app in `common`.
"""

from gptbench.cli import run  # noqa: F401  (registers the command)
from gptbench.cli.common import app


def main() -> None:
    """Entry point of the `gptbench` console script and `python -m gptbench`."""
    app()
