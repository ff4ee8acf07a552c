"""The live display of a measured run on stderr: a spinner through warm-up, then a bar over the measured steps."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from gptbench.cli.common import err

if TYPE_CHECKING:  # types only: the command module is imported without torch
    from rich.progress import TaskID

    from gptbench.bench.config import BenchConfig
    from gptbench.bench.harness import Progress
    from gptbench.reports.schema import Run


@contextmanager
def progress_display(enabled: bool) -> Iterator[Callable[[Progress], None]]:
    """A spinner with elapsed time during warm-up, then a bar over measured steps with live tok/s (stderr)."""
    from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar  # rich's display; `Progress` here is the harness's report of a step

    if not enabled:
        yield lambda _: None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[rate]}"),
    )
    with Bar(*columns, console=err, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def update(p: Progress) -> None:
            label = "warm-up (compiling, if --compile)" if p.phase == "warmup" else "measuring"
            if p.phase not in tasks:
                tasks[p.phase] = bar.add_task(label, total=p.total, rate="")
            rate = f"{p.tokens_per_sec:,.0f} tok/s" if p.tokens_per_sec else ""
            bar.update(tasks[p.phase], completed=p.step, rate=rate)

        yield update


def measure_with_progress(config: BenchConfig, show: bool) -> Run:
    """One in-process measured run with the progress display."""
    from gptbench.bench.runner import run_benchmark

    with progress_display(show) as on_progress:
        return run_benchmark(config, on_progress)
