"""`gptbench sweep` and `gptbench ablate`: many runs, each in its own process, kept on disk as they finish."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from gptbench.cli import checks
from gptbench.cli import options as opt
from gptbench.cli.common import MEASURE, app, err, friendly, out, say_unwritten
from gptbench.cli.preload import prepare_allocator
from gptbench.reports.text import short

if TYPE_CHECKING:  # types only: the command module is imported without torch
    from gptbench.bench.config import BenchConfig
    from gptbench.reports.schema import Report, Run
    from gptbench.reports.store import ReportFile
    from gptbench.studies.series import SeriesItem


def run_series_with_status(
    items: list[SeriesItem], report: Report, out_dir: Path, title: str, ladder: bool = False, table: bool = True
) -> ReportFile:
    """Run the series with a spinner naming the current run and a line per finished run, then print the table
    (without `table`, for --json: only the report's path, on stderr with the progress)."""
    from gptbench.studies.series import run_series
    from gptbench.views.tables import series_table

    total = len(items)
    with err.status("starting…") as status:

        def on_start(i: int, name: str) -> None:
            status.update(f"run {i + 1}/{total}: {name}")

        def on_run(run: Run) -> None:
            r = run.result
            rate = f"{r.tokens_per_sec:,.0f} tok/s" if r.status == "ok" else f"{r.status}: {short(r.error)}"
            err.print(f"  {run.name}: {rate}", highlight=False, soft_wrap=True)

        try:
            file = run_series(items, report, str(out_dir), on_start, on_run)
        except KeyboardInterrupt:
            done = len(report.runs)
            err.print(f"[yellow]interrupted[/yellow]: {done} finished run(s) are kept in the report in {out_dir}")
            raise
    if table:
        out.print(series_table(report.runs, title, ladder=ladder))
    if file.failure is not None:  # the table (or --json) still carries every run
        say_unwritten(file.failure)
    else:
        (out if table else err).print(f"report: {file.path}", soft_wrap=True, highlight=False)
    return file


@app.command(rich_help_panel=MEASURE)
@friendly
def sweep(
    ctx: typer.Context,
    batch: Annotated[Optional[str], typer.Option(help="Micro-batches to try, e.g. 4,8,16.")] = None,
    seq: Annotated[Optional[str], typer.Option(help="Sequence lengths, e.g. 512,1024.")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="Autocast dtypes, e.g. bf16,fp32.")] = None,
    compile: Annotated[Optional[str], typer.Option(help="torch.compile on, off, or on,off.")] = None,
    attention: Annotated[Optional[str], typer.Option(help="Attention backends, e.g. sdpa,naive.")] = None,
    activation_checkpointing: Annotated[
        Optional[str], typer.Option(help="Per-block activation checkpointing on, off, or on,off.")
    ] = None,
    loss: Annotated[Optional[str], typer.Option(help="Losses, e.g. standard,chunked.")] = None,
    compile_mode: Annotated[
        Optional[str], typer.Option(help="torch.compile modes, e.g. default,max-autotune-no-cudagraphs.")
    ] = None,
    fp8: Annotated[Optional[str], typer.Option(help="FP8 linear layers on, off, or on,off.")] = None,
    device: opt.Device = "auto",
    model: opt.Model = "124m",
    n_layer: opt.NLayer = None,
    n_head: opt.NHead = None,
    n_embd: opt.NEmbd = None,
    grad_accum: opt.GradAccum = 1,
    adamw: opt.AdamW = "auto",
    tf32: opt.Tf32 = None,
    vocab_pad: opt.VocabPad = None,
    data: opt.Data = "synthetic",
    steps: opt.Steps = None,
    warmup: opt.Warmup = None,
    lr: opt.Lr = 6e-4,
    seed: opt.Seed = 1337,
    model_factory: opt.ModelFactory = None,
    model_arg: opt.ModelArg = None,
    vocab: opt.Vocab = None,
    label: opt.Label = "sweep",
    out_dir: opt.OutDir = Path("reports"),
    as_json: opt.TableJson = False,
    allocator: opt.Allocator = "auto",
    threads: opt.Threads = None,
) -> None:
    """Measure the cross product of the given values, one run each; the fastest is marked."""
    checks.only_with(ctx, opt.FACTORY_ONLY, model_factory is not None, "--model-factory")
    prepare_allocator(allocator, device)
    from gptbench.bench.runner import new_report
    from gptbench.studies.sweep import plan_sweep, sweep_items

    axes = {
        "micro_batch": opt.parse_list("batch", batch, int),
        "seq_len": opt.parse_list("seq", seq, int, checks.SEQ_MAX),
        "dtype": opt.parse_list("dtype", dtype, str),
        "compile": opt.parse_list("compile", compile, bool),
        "attention": opt.parse_list("attention", attention, str),
        "activation_checkpointing": opt.parse_list("activation-checkpointing", activation_checkpointing, bool),
        "loss": opt.parse_list("loss", loss, str),
        "compile_mode": opt.parse_list("compile-mode", compile_mode, str),
        "fp8": opt.parse_list("fp8", fp8, bool),
    }
    base = opt.run_options(
        device=device, model=model, n_layer=n_layer, n_head=n_head, n_embd=n_embd, vocab_pad=vocab_pad,
        grad_accum=grad_accum, adamw=adamw, tf32=tf32, data=data, warmup=warmup, steps=steps, lr=lr, seed=seed,
        model_factory=model_factory, model_arg=model_arg, vocab=vocab,
        allocator=allocator, threads=threads,
    )  # fmt: skip
    plan = plan_sweep(base, axes)
    report = new_report(plan.configs[0].torch_device, label)
    run_series_with_status(sweep_items(plan), report, out_dir, f"sweep · {len(plan.configs)} runs", table=not as_json)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))


@app.command(rich_help_panel=MEASURE)
@friendly
def ablate(
    ctx: typer.Context,
    device: opt.Device = "auto",
    model: opt.Model = "124m",
    n_layer: opt.NLayer = None,
    n_head: opt.NHead = None,
    n_embd: opt.NEmbd = None,
    seq: opt.Seq = None,
    batch: Annotated[Optional[str], typer.Option(help="Micro-batch of every rung but the last (default: per device).")] = None,
    grad_accum: opt.GradAccum = 1,
    data: opt.Data = "synthetic",
    steps: opt.Steps = None,
    warmup: opt.Warmup = None,
    lr: opt.Lr = 6e-4,
    seed: opt.Seed = 1337,
    model_factory: opt.ModelFactory = None,
    model_arg: opt.ModelArg = None,
    vocab: opt.Vocab = None,
    batch_search: Annotated[
        bool, typer.Option("--batch-search/--no-batch-search", help="End with the largest micro-batch that fits.")
    ] = True,
    memory_limit: opt.MemoryLimit = None,
    headroom: opt.Headroom = 0.1,
    max_batch: opt.MaxBatch = 1024,
    probe_step_limit_s: opt.ProbeStepLimit = opt.PROBE_STEP_LIMIT_S,
    label: opt.Label = "ablate",
    out_dir: opt.OutDir = Path("reports"),
    as_json: opt.TableJson = False,
    allocator: opt.Allocator = "auto",
    threads: opt.Threads = None,
    activation_checkpointing: opt.ActivationCheckpointing = False,
) -> None:
    """The optimization ladder on this machine: each rung adds one change; tokens/s and speedups per rung."""
    checks.only_with(ctx, opt.SEARCH_ONLY, batch_search, "--batch-search (the default)")
    checks.only_with(ctx, opt.FACTORY_ONLY, model_factory is not None, "--model-factory")
    prepare_allocator(allocator, device)
    from gptbench.bench.config import resolve_config
    from gptbench.bench.runner import new_report

    options = opt.run_options(
        device=device, model=model, n_layer=n_layer, n_head=n_head, n_embd=n_embd, seq=seq, batch=opt.parse_batch(batch),
        grad_accum=grad_accum, data=data, warmup=warmup, steps=steps, lr=lr, seed=seed,
        model_factory=model_factory, model_arg=model_arg, vocab=vocab,
        allocator=allocator, threads=threads, activation_checkpointing=activation_checkpointing,
    )  # fmt: skip
    config = resolve_config(options)
    limit_gb = opt.memory_limit_gb(memory_limit, config.device)
    largest = None
    if batch_search:
        largest = find_largest_batch(config, limit_gb, headroom, max_batch, probe_step_limit_s)
    report = new_report(config.torch_device, label)
    run_ladder(config, report, out_dir, largest, fit_batch=batch is None, table=not as_json)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))


def find_largest_batch(
    config: BenchConfig, memory_limit_gb: float | None, headroom: float, max_batch: int, step_limit_s: float | None
) -> int:
    """The batch search at the top of the ladder's configuration, with a spinner and the probes table."""
    from gptbench.studies.ablate import final_config
    from gptbench.studies.autobatch import AutoBatch, find_largest, search_bounds, why_largest
    from gptbench.views.tables import probes_table

    bound, source, limits = search_bounds(config.device, memory_limit_gb, headroom, max_batch, step_limit_s)
    with err.status("searching for the largest micro-batch that fits…") as status:
        largest, probes = find_largest(
            final_config(config),
            bound,
            max_batch,
            lambda p: status.update(f"micro-batch {p.micro_batch}: {short(p.why)}"),
            limits,
        )
    err.print(probes_table(AutoBatch(bound, source, probes, largest, [], limits)))
    err.print(f"micro-batch {largest}: {why_largest(probes, largest, max_batch)}", highlight=False)
    return largest


def run_ladder(
    config: BenchConfig,
    report: Report,
    out_dir: Path,
    largest: int | None,
    measured: dict[BenchConfig, Run] | None = None,
    fit_batch: bool = True,
    table: bool = True,
) -> ReportFile:
    """Run every rung of the ladder into `report`, then print the ladder table. A rung whose configuration is in
    `measured` (BenchConfig -> Run, from earlier in the same invocation) reuses that run instead of repeating it.
    With `fit_batch` (no --batch given) on a GPU, the rungs run at a micro-batch whose fp32 baseline fits."""
    import dataclasses

    from gptbench.studies.ablate import fit_baseline_batch, ladder_items
    from gptbench.studies.autobatch import memory_bound_gb

    if fit_batch and config.torch_device.type in ("cuda", "mps"):
        config, why = fit_baseline_batch(config, memory_bound_gb(config.device, None, 0.1)[0])
        err.print(why or f"ladder micro-batch {config.micro_batch}: the fp32 baseline fits", highlight=False, soft_wrap=True)
    items = [dataclasses.replace(i, measured=(measured or {}).get(i.config)) for i in ladder_items(config, largest)]
    title = f"optimization ladder · {config.device}"
    return run_series_with_status(items, report, out_dir, title, ladder=True, table=table)
