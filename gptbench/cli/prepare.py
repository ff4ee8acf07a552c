"""`gptbench prepare`: tokenize a corpus once into llm.c-format token shards that `gptbench run --data` reads."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from gptbench.cli import checks
from gptbench.cli.common import DATA, app, err, exit_for, friendly, out, say_unwritten

if TYPE_CHECKING:
    from gptbench.data.prepare import PrepareProgress, PrepareResult


@contextmanager
def prepare_progress() -> Iterator[Callable[[PrepareProgress], None]]:
    """A bar over the input bytes, with documents, tokens, tokens/s and complete shards (stderr, cleared at the end)."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    from gptbench.reports.text import fmt_rate

    columns = (BarColumn(bar_width=20), TaskProgressColumn(), TimeRemainingColumn(), TextColumn("{task.fields[counts]}"))
    bar = Progress(*columns, console=err, transient=True, disable=not err.is_terminal)  # no bar in logs
    task = bar.add_task("tokenizing", total=None, counts="")

    def update(p: PrepareProgress) -> None:
        if not bar.live.is_started:  # started on the first batch, so an early error line stands alone
            bar.start()
        counts = f"{p.documents:,} docs · {p.tokens / 1e6:,.1f}M tokens · {fmt_rate(p.tokens_per_sec)} · {p.shards} shards done"
        bar.update(task, completed=p.bytes_done, total=p.bytes_total, counts=counts)

    try:
        yield update
    finally:
        if bar.live.is_started:
            bar.stop()


def print_prepare_summary(result: PrepareResult, out_dir: Path) -> None:
    """What was written, how fast, and the command that trains on it."""
    from gptbench.reports.text import fmt_rate

    n = len(result.shards)
    split = "1 val shard" + (f" + {n - 1} train" if n > 1 else "")
    workers = f"{result.workers} worker processes" if result.workers > 1 else "tokenized in this process"
    out.print(
        f"wrote {n} shards ({split}) to {out_dir}: {result.documents:,} documents, {result.tokens:,} tokens"
        f" in {result.elapsed_s:,.1f} s ({fmt_rate(result.tokens_per_sec)}, {workers})",
        highlight=False,
        soft_wrap=True,
    )
    if n == 1:
        out.print("note: everything fit in the val shard; `run --data` will sample it (lower --shard-tokens for train shards)")
    out.print(f"train on it: gptbench run --data {out_dir}", highlight=False, soft_wrap=True)


@app.command(rich_help_panel=DATA)
@friendly
def prepare(
    ctx: typer.Context,
    inputs: Annotated[list[str], typer.Argument(help="Parquet, jsonl or text files, folders, or quoted globs.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the shards (made if missing).")] = Path("shards"),
    name: Annotated[str, typer.Option(help="Shard name prefix: NAME_val_000000.bin, NAME_train_000001.bin, ...")] = "corpus",
    column: Annotated[str, typer.Option(help="The parquet column or jsonl field holding each document's text.")] = "text",
    split_on: Annotated[
        Optional[str],
        typer.Option(help="Text files: the separator between documents, e.g. '\\n\\n' (default: one document per file)."),
    ] = None,
    shard_tokens: Annotated[str, typer.Option(help="Tokens per shard: 100M, 1e8, 2.5B, ...")] = "100M",
    workers: Annotated[
        Optional[int],
        typer.Option(
            help="Tokenizer processes (default: cores - 1, at least 1; 1 tokenizes in this process).",
            callback=checks.whole(1, checks.CPUS_MAX),
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the folder's existing NAME shards.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was written as JSON instead of the summary.")] = False,
) -> None:
    """Tokenize parquet (FineWeb), jsonl or text with GPT-2's BPE into llm.c-format token shards."""
    from gptbench.data.corpus import input_format, parse_separator, resolve_inputs
    from gptbench.data.prepare import PrepareConfig, PrepareIncomplete, PrepareInterrupted, default_workers, parse_count

    paths = resolve_inputs(inputs)
    formats = {input_format(path) for path in paths}
    checks.only_with(ctx, ("column",), bool(formats & {"parquet", "jsonl"}), "parquet or jsonl inputs")
    checks.only_with(ctx, ("split_on",), "text" in formats, "text-file inputs")
    config = PrepareConfig(
        inputs=paths,
        out_dir=out_dir,
        name=name,
        column=column,
        split_on=None if split_on is None else parse_separator(split_on),
        shard_tokens=parse_count(shard_tokens, "--shard-tokens"),
        workers=default_workers() if workers is None else workers,
        force=force,
    )
    from gptbench.data.prepare import prepare as run_prepare

    try:
        with prepare_progress() as on_progress:
            result = run_prepare(config, on_progress)
    except PrepareInterrupted as e:
        err.print(
            f"[yellow]interrupted:[/yellow] {len(e.shards)} complete shards in {out_dir}; the shard in progress was discarded",
            highlight=False,
            soft_wrap=True,
        )
        raise exit_for(e) from None
    except PrepareIncomplete as e:  # said in a line; what was written is still printed, then exit 1
        say_unwritten(e)
        result = e.result
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
    else:
        print_prepare_summary(result, out_dir)
