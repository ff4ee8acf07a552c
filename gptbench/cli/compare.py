"""`gptbench compare`: reports from many machines side by side, with honest warnings, exports and a chart."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from gptbench.cli import checks
from gptbench.cli.common import DECIDE, app, err, friendly, kept, out


@app.command(rich_help_panel=DECIDE)
@friendly
def compare(
    ctx: typer.Context,
    inputs: Annotated[list[str], typer.Argument(help="Report files, folders of reports, or glob patterns.", show_default=False)],
    baseline: Annotated[
        Optional[str], typer.Option(help="The report (file, label or hostname) that is 1.00× (default: the slowest run).")
    ] = None,
    sort: Annotated[Optional[str], typer.Option(help="Sort by a column: tokens_per_sec, mfu, usd_per_billion_tokens, …")] = None,
    group: Annotated[bool, typer.Option("--group", help="Line up identical configurations across machines.")] = False,
    price: Annotated[
        Optional[list[str]],
        typer.Option(
            help="USD per GPU-hour for every run (1.29), or NAME=USD for matching runs (default: the catalog's cheapest)."
        ),
    ] = None,
    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="Also write every column as CSV.")] = None,
    markdown_path: Annotated[Optional[Path], typer.Option("--markdown", help="Also write the table as Markdown.")] = None,
    html_path: Annotated[Optional[Path], typer.Option("--html", help="Also write an HTML page with charts (offline).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace export files that already exist.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON instead of the table.")] = False,
) -> None:
    """Compare reports side by side: tokens/s, relative speed, MFU, memory, $ per billion tokens, FineWeb-10B hours."""
    exports = any(path is not None for path in (csv_path, markdown_path, html_path))
    checks.only_with(ctx, ("force",), exports, "--csv, --markdown or --html")
    # imported here, not at the top: pandas is only paid for by this command
    from gptbench.views import export, files
    from gptbench.views.compare import CompareOptions, parse_prices
    from gptbench.views.compare import compare as compare_runs
    from gptbench.views.compare_table import compare_table, footnotes, warning_lines
    from gptbench.views.load import load_runs

    options = CompareOptions(baseline=baseline, sort=sort, group=group, prices=parse_prices(price or []))
    targets = files.check_targets({"--csv": csv_path, "--markdown": markdown_path, "--html": html_path}, force)
    loaded = load_runs(inputs)
    for warning in loaded.warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False, soft_wrap=True)
    comparison = compare_runs(loaded, options)
    makers = {"--csv": export.to_csv, "--markdown": export.to_markdown, "--html": export.to_html}
    texts = {path: makers[option](comparison) for option, path in targets.items()}  # all rendered before any is written
    written = [path for path, text in texts.items() if kept(partial(files.write_new, path, text, force))]
    if as_json:
        out.print_json(json.dumps(export.to_json_data(comparison), allow_nan=False))
    else:
        for line in warning_lines(comparison):
            out.print(f"[yellow]warning:[/yellow] {escape(line)}", highlight=False)
        out.print(compare_table(comparison, out.width), highlight=False)  # out.width: the terminal, or $COLUMNS piped
        for line in footnotes(comparison):
            out.print(line, markup=False, highlight=False)
    for path in written:
        err.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
