"""`gptbench run`: measure one training configuration on this machine and write a report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from gptbench.bench import ranks
from gptbench.cli import checks, ddp
from gptbench.cli import options as opt
from gptbench.cli.common import MEASURE, app, err, exit_for, friendly, kept, last_stop_signal, out
from gptbench.cli.preload import prepare_allocator
from gptbench.cli.progress import measure_with_progress
from gptbench.errors import Stopped, signal_name, stop_signal

if TYPE_CHECKING:  # types only: the command module is imported without torch
    from gptbench.bench.config import BenchConfig
    from gptbench.reports.schema import Run
    from gptbench.studies.autobatch import Probe


@app.command(rich_help_panel=MEASURE)
@friendly
def run(
    ctx: typer.Context,
    device: opt.Device = "auto",
    model: opt.Model = "124m",
    n_layer: opt.NLayer = None,
    n_head: opt.NHead = None,
    n_embd: opt.NEmbd = None,
    seq: opt.Seq = None,
    batch: Annotated[
        Optional[str],
        typer.Option(help="Micro-batch size, or auto for the fastest that fits (default: by a CUDA GPU's memory, 4 MPS, 1 CPU)."),
    ] = None,
    grad_accum: opt.GradAccum = 1,
    dtype: opt.Dtype = "auto",
    compile: opt.Compile = None,
    attention: opt.Attention = "sdpa",
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
    memory_limit: opt.MemoryLimit = None,
    headroom: opt.Headroom = 0.1,
    max_batch: opt.MaxBatch = 1024,
    probe_step_limit_s: opt.ProbeStepLimit = opt.PROBE_STEP_LIMIT_S,
    label: opt.Label = None,
    out_dir: opt.OutDir = Path("reports"),
    as_json: opt.ReportJson = False,
    nproc: ddp.Nproc = None,
    scaling: ddp.Scaling = False,
    baseline_report: ddp.BaselineReport = None,
    dist_timeout: ddp.DistTimeout = 300.0,
    allocator: opt.Allocator = "auto",
    threads: opt.Threads = None,
    activation_checkpointing: opt.ActivationCheckpointing = False,
    shard: ddp.Shard = "none",
    loss: opt.Loss = "standard",
    compile_mode: opt.CompileMode = "default",
    fp8: opt.Fp8 = False,
) -> None:
    """Train GPT-2 for a few steps, measure tokens/s, MFU and memory, and write a report."""
    auto = batch is not None and batch.strip().lower() == "auto"
    checks.only_with(ctx, opt.SEARCH_ONLY, auto, "--batch auto")
    checks.only_with(ctx, opt.FACTORY_ONLY, model_factory is not None, "--model-factory")
    prepare_allocator(allocator, device)  # may restart this command with the allocator preloaded, before any work
    from gptbench.bench.config import resolve_config
    from gptbench.bench.runner import finish_report, new_report
    from gptbench.reports.text import short
    from gptbench.views.summary import print_run_summary, run_json

    options = opt.run_options(
        device=device, model=model, n_layer=n_layer, n_head=n_head, n_embd=n_embd, vocab_pad=vocab_pad, seq=seq,
        batch=None if auto else opt.parse_batch(batch), grad_accum=grad_accum, dtype=dtype, compile=compile,
        attention=attention, adamw=adamw, tf32=tf32, data=data, warmup=warmup, steps=steps, lr=lr, seed=seed,
        model_factory=model_factory, model_arg=model_arg, vocab=vocab,
        allocator=allocator, threads=threads, activation_checkpointing=activation_checkpointing, shard=shard,
        loss=loss, compile_mode=compile_mode, fp8=fp8,
    )  # fmt: skip
    ranks.check_shard(shard, nproc)
    checks.only_with(ctx, ("dist_timeout",), ranks.wanted(nproc, scaling, baseline_report), "--nproc")
    config = resolve_config(ranks.placed(options))  # under torchrun: this rank's own GPU
    limit_gb = opt.memory_limit_gb(memory_limit, config.device)
    if ranks.wanted(nproc, scaling, baseline_report):
        runs = ddp.measure_ranks(
            config, device, nproc, scaling, baseline_report,
            timeout_s=dist_timeout, batch_auto=auto, show=err.is_terminal or not as_json, label=label, ctx=ctx,
        )  # fmt: skip
        if runs is None:
            return  # a rank other than 0, or the launcher after its ranks finished: rank 0 wrote the report
        stopped = None
    elif auto:
        runs, stopped = search_batch(config, limit_gb, headroom, max_batch, probe_step_limit_s)
    else:
        runs, stopped = measure_once(config, err.is_terminal or not as_json)
    report = new_report(config.torch_device, label, runs)
    path = kept(lambda: finish_report(report, out_dir))  # a failed write is said; the numbers are still printed
    best = runs[0]
    if as_json:
        out.print_json(json.dumps(run_json(report, best)))
    else:
        print_run_summary(out, report, best, path)
    if stopped is not None:  # what was measured is written and printed; the exit still says the run was stopped
        err.print(f"[yellow]interrupted:[/yellow] {stopped}", highlight=False, soft_wrap=True)
        raise exit_for(stopped)
    if best.result.status != "ok":
        err.print(f"[red]error:[/red] the run ended with status {best.result.status}: {short(best.result.error, 300)}")
        raise typer.Exit(1)


def measure_once(config: BenchConfig, show: bool) -> tuple[list[Run], Stopped | None]:
    """The one in-process run, and the stop signal that ended its measured steps early (None: all were measured).
    Stopped before the first measured step, nothing was measured: said, and the command ends (130 or 143)."""
    try:
        run = measure_with_progress(config, show)
    except KeyboardInterrupt as e:
        err.print(f"[yellow]interrupted[/yellow] ({signal_name(stop_signal(e))}) before the first measured step: nothing was "
                  "measured, no report written", highlight=False, soft_wrap=True)  # fmt: skip
        raise exit_for(e) from None
    if run.result.status != "interrupted":
        return [run], None
    return [run], Stopped(last_stop_signal(), f"{run.result.error}; the report holds them, marked interrupted")


def search_batch(
    config: BenchConfig, memory_limit_gb: float | None, headroom: float, max_batch: int, step_limit_s: float | None
) -> tuple[list[Run], Stopped | None]:
    """`--batch auto`: probe, then measure the candidates; the fastest comes first. A stop signal after a candidate
    finished keeps the finished ones (and says which signal); before that it ends the command."""
    from gptbench.reports.text import short
    from gptbench.studies.autobatch import auto_batch, fastest_first
    from gptbench.views.tables import probes_table

    finished: list[Run] = []
    with err.status("searching for the largest micro-batch that fits…") as status:

        def on_probe(p: Probe) -> None:
            status.update(f"micro-batch {p.micro_batch}: {short(p.why)}")

        def on_run(r: Run) -> None:
            finished.append(r)
            status.update(f"measured {r.name}: {r.result.status}")

        try:
            found = auto_batch(config, memory_limit_gb, headroom, max_batch, on_probe, on_run, step_limit_s)
        except KeyboardInterrupt as e:
            if not finished:
                raise
            kept_runs = f"{signal_name(stop_signal(e))}: the {len(finished)} candidate run(s) that finished are kept"
            return fastest_first(finished), Stopped(stop_signal(e), kept_runs)
    err.print(probes_table(found))
    return found.runs, None
