"""`gptbench chapter5`: the book's chapter-5 training run on The Verdict, timed on this machine, beside published times."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from gptbench.cli import checks
from gptbench.cli import options as opt
from gptbench.cli.common import MEASURE, app, err, friendly, kept, out
from gptbench.model.config import GPT2_VOCAB

if TYPE_CHECKING:  # types only: the command module is imported without torch
    from gptbench.reports.schema import EpochLoss, Report, Run

EPOCHS_MAX = 10_000  # the book trains 10; an epoch of The Verdict is 9 steps at batch 2
CONTEXT_MAX = 1024  # the book's GPT-2 sizes learn 1024 positions


@app.command(rich_help_panel=MEASURE)
@friendly
def chapter5(
    device: opt.Device = "auto",
    epochs: Annotated[
        int,
        typer.Option(
            help="Epochs over the training text (the book: 10; fewer for a quick check).", callback=checks.whole(1, EPOCHS_MAX)
        ),
    ] = 10,
    model: Annotated[str, typer.Option(help="A book-* preset (book-tiny for a quick check).")] = "book-124m",
    context: Annotated[
        int, typer.Option(help="Context length in tokens (the book: 256).", callback=checks.whole(1, CONTEXT_MAX))
    ] = 256,
    text: Annotated[
        Optional[Path],
        typer.Option(
            help="The training text (default: The Verdict, shipped with gptbench).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
    temperature: Annotated[
        float, typer.Option(help="Temperature of the closing sample (the book: 1.4).", callback=checks.POSITIVE)
    ] = 1.4,
    top_k: Annotated[
        int, typer.Option(help="Top-k of the closing sample (the book: 25).", callback=checks.whole(1, GPT2_VOCAB))
    ] = 25,
    seed: Annotated[
        int, typer.Option(help="Seed for the weights, the shuffling and the sample (the book: 123).", callback=checks.SEED)
    ] = 123,
    label: opt.Label = "chapter5",
    out_dir: opt.OutDir = Path("reports"),
    as_json: opt.ReportJson = False,
) -> None:
    """Train the book's GPTModel as chapter 5 does (The Verdict, context 256, batch 2, AdamW 4e-4) and time it."""
    from gptbench.bench.runner import new_report
    from gptbench.errors import GptbenchError
    from gptbench.hardware.device import resolve_device
    from gptbench.reports.store import write_report
    from gptbench.studies.chapter5 import THE_VERDICT, Chapter5Config, run_chapter5

    if not model.lower().startswith("book-"):
        raise GptbenchError(f"--model {model}: chapter 5 trains the book's GPTModel; choose a book-* preset (book-124m)")
    torch_device = resolve_device(device)
    path = str(text) if text is not None else str(THE_VERDICT)
    config = Chapter5Config(
        str(torch_device), path, model.lower(), epochs, temperature=temperature, top_k=top_k, seed=seed, context=context
    )
    with err.status("training…") as status:

        def on_eval(point: EpochLoss) -> None:
            status.update(
                f"epoch {point.epoch}/{epochs}, step {point.step}: train {point.train_loss:.3f}, val {point.val_loss:.3f}"
            )

        run = run_chapter5(config, on_eval)
    report = new_report(torch_device, label, [run])
    file = kept(lambda: write_report(report, out_dir))
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    print_summary(run, report)
    if file is not None:
        out.print(f"report: {file}", soft_wrap=True, highlight=False)


def print_summary(run: Run, report: Report) -> None:
    """Times beside the published ones, losses beside the book's notebook, and the closing sample."""
    from gptbench.studies.chapter5 import BOOK_EPOCH_LOSSES, NOTEBOOK, PUBLISHED_TIMES

    c5, result = run.result.chapter5, run.result
    assert c5 is not None, "a chapter-5 run's result carries its chapter-5 figures"
    accel = report.machine.accelerator
    here = accel.name or report.machine.cpu.model or accel.kind
    times = Table(
        title=f"book chapter 5 · {run.config.model.preset} ({run.config.model.n_params / 1e6:,.1f}M) · {c5.epochs} epochs"
    )
    times.add_column("machine")
    times.add_column("wall time", justify="right")
    times.add_column("source")
    times.add_row(
        f"this machine: {here}", _duration(c5.wall_s), f"measured: {c5.steps} steps, {c5.train_tokens:,} training tokens"
    )
    for name, seconds, source in PUBLISHED_TIMES:
        times.add_row(name, f"~{_duration(seconds)}", source)
    out.print(times)
    out.print(
        f"tokens/s: {c5.tokens_per_sec_wall:,.0f} over the whole run (evaluation and samples included); "
        f"{result.tokens_per_sec:,.0f} median over training steps",
        highlight=False,
    )
    losses = Table(title=f"loss at the last evaluation of each epoch · book: {NOTEBOOK}")
    for name in ("epoch", "step", "train", "val", "book train", "book val"):
        losses.add_column(name, justify="right")
    for point in c5.epoch_losses:
        book = BOOK_EPOCH_LOSSES[point.epoch - 1] if point.epoch <= len(BOOK_EPOCH_LOSSES) else ("", "")
        losses.add_row(str(point.epoch), str(point.step), f"{point.train_loss:.3f}", f"{point.val_loss:.3f}", *map(str, book))
    out.print(losses)
    out.print(f"sample (temperature {c5.temperature}, top-k {c5.top_k}, seed {c5.seed}): {c5.sample!r}", soft_wrap=True)


def _duration(seconds: float) -> str:
    return f"{seconds:,.1f} s" if seconds < 120 else f"{seconds / 60:,.1f} min"
