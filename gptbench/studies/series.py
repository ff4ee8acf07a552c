"""One shape for every study: a list of named points (`SeriesItem`), each measured in its own process and written to
one report as it finishes, so Ctrl-C or a crash keeps every finished run. sweep, ablate and suite are series."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from gptbench.bench.config import BenchConfig
from gptbench.bench.runner import planned_params, run_config
from gptbench.bench.worker import run_in_subprocess
from gptbench.reports.schema import Report, Run, RunResult
from gptbench.reports.store import ReportFile


@dataclass(frozen=True)
class SeriesItem:
    name: str
    config: BenchConfig
    skipped: str | None = None  # why this point is not run here (recorded as status "skipped")
    measured: Run | None = None  # the same configuration, already measured in this invocation (suite)


def run_series(
    items: list[SeriesItem],
    report: Report,
    out_dir: str,
    on_start: Callable[[int, str], None] | None = None,
    on_run: Callable[[Run], None] | None = None,
) -> ReportFile:
    """Measure each item in a fresh process, rewriting the report after each one so no finished run is lost."""
    file = ReportFile(out_dir, report)
    for i, item in enumerate(items):
        if on_start:
            on_start(i, item.name)
        if item.skipped:
            run = Run(run_config(item.config, planned_params(item.config)), RunResult(status="skipped", error=item.skipped))
        elif item.measured is not None:
            run = dataclasses.replace(item.measured)
        else:
            run = run_in_subprocess(item.config)
        run.name = item.name
        report.runs.append(run)
        file.update(report)
        if on_run:
            on_run(run)
    return file
