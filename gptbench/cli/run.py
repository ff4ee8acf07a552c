"""`gptbench run`: measure one training configuration on this machine and write a report."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from gptbench.cli.common import app, err, friendly, out


@contextmanager
def progress_display(enabled: bool) -> Iterator[Callable[[Any], None]]:
    """A spinner with elapsed time during warm-up, then a bar over measured steps with live tok/s (stderr)."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

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
    with Progress(*columns, console=err, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(p: Any) -> None:
            label = "warm-up (compiling, if --compile)" if p.phase == "warmup" else "measuring"
            if p.phase not in tasks:
                tasks[p.phase] = bar.add_task(label, total=p.total, rate="")
            rate = f"{p.tokens_per_sec:,.0f} tok/s" if p.tokens_per_sec else ""
            bar.update(tasks[p.phase], completed=p.step, rate=rate)

        yield update


@app.command()
@friendly
def run(
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    model: Annotated[str, typer.Option(help="Preset: tiny, 124m, 355m, 774m, 1558m.")] = "124m",
    n_layer: Annotated[Optional[int], typer.Option(help="Override the preset's layers.")] = None,
    n_head: Annotated[Optional[int], typer.Option(help="Override the preset's attention heads.")] = None,
    n_embd: Annotated[Optional[int], typer.Option(help="Override the preset's embedding width.")] = None,
    seq: Annotated[Optional[int], typer.Option(help="Sequence length [default: the model's block size].")] = None,
    batch: Annotated[Optional[int], typer.Option(help="Micro-batch size [default: 16 on CUDA, 4 on MPS, 1 on CPU].")] = None,
    grad_accum: Annotated[int, typer.Option(help="Micro-batches per optimizer step.")] = 1,
    dtype: Annotated[
        str, typer.Option(help="auto, bf16, fp16 or fp32 (autocast) [auto: bf16 where fast, else fp16 on CUDA, fp32 on CPU/MPS].")
    ] = "auto",
    compile: Annotated[
        Optional[bool], typer.Option("--compile/--no-compile", help="torch.compile the model [default: on for CUDA].")
    ] = None,
    attention: Annotated[str, typer.Option(help="sdpa (fused/flash) or naive (explicit mask + softmax).")] = "sdpa",
    adamw: Annotated[str, typer.Option(help="auto, fused, foreach or for-loop.")] = "auto",
    tf32: Annotated[Optional[bool], typer.Option("--tf32/--no-tf32", help="TF32 fp32 matmuls [default: on for CUDA].")] = None,
    vocab_pad: Annotated[bool, typer.Option("--vocab-pad/--no-vocab-pad", help="Pad the vocabulary 50257 → 50304.")] = True,
    data: Annotated[str, typer.Option(help="synthetic, a text file, or token shards (a .bin or a folder).")] = "synthetic",
    steps: Annotated[Optional[int], typer.Option(help="Measured steps [default: 30 on CUDA, 10 on MPS, 8 on CPU].")] = None,
    warmup: Annotated[Optional[int], typer.Option(help="Warm-up steps, timed apart [default: 3 CUDA, 2 MPS, 1 CPU].")] = None,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 6e-4,
    seed: Annotated[int, typer.Option(help="Seed for weights and data.")] = 1337,
    label: Annotated[Optional[str], typer.Option(help="A name for this run, kept in the report and its file name.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the report.")] = Path("reports"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of the summary.")] = False,
) -> None:
    """Train GPT-2 for a few steps, measure tokens/s, MFU and memory, and write a report."""
    from gptbench.bench.config import RunOptions, resolve_config
    from gptbench.bench.runner import new_report, run_benchmark
    from gptbench.reports.render import print_run_summary
    from gptbench.reports.store import write_report

    options = RunOptions(
        device=device,
        model=model,
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
        vocab_pad=vocab_pad,
        seq_len=seq,
        micro_batch=batch,
        grad_accum=grad_accum,
        dtype=None if dtype == "auto" else dtype,
        compile=compile,
        attention=attention,
        adamw=adamw,
        tf32=tf32,
        data=data,
        warmup_steps=warmup,
        steps=steps,
        lr=lr,
        seed=seed,
    )
    config = resolve_config(options)
    with progress_display(err.is_terminal or not as_json) as on_progress:
        result = run_benchmark(config, on_progress)
    report = new_report(config.torch_device, label, [result])
    path = write_report(report, out_dir)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        print_run_summary(out, report, result, path)
    if result.result.status != "ok":
        err.print(f"[red]error:[/red] the run ended with status {result.result.status}: {result.result.error}", soft_wrap=True)
        raise typer.Exit(1)
