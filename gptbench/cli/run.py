"""`gptbench run`: measure one training configuration on this machine and write a report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from gptbench.bench import ranks
from gptbench.cli import checks, ddp
from gptbench.cli import options as opt
from gptbench.cli.common import MEASURE, app, err, friendly, out
from gptbench.cli.preload import prepare_allocator
from gptbench.cli.progress import measure_with_progress

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
    elif auto:
        runs = search_batch(config, limit_gb, headroom, max_batch, probe_step_limit_s)
    else:
        runs = [measure_with_progress(config, err.is_terminal or not as_json)]
    report = new_report(config.torch_device, label, runs)
    path = finish_report(report, out_dir)
    best = runs[0]
    if as_json:
        out.print_json(json.dumps(run_json(report, best)))
    else:
        print_run_summary(out, report, best, path)
    if best.result.status != "ok":
        err.print(f"[red]error:[/red] the run ended with status {best.result.status}: {short(best.result.error, 300)}")
        raise typer.Exit(1)


def search_batch(
    config: BenchConfig, memory_limit_gb: float | None, headroom: float, max_batch: int, step_limit_s: float | None
) -> list[Run]:
    """`--batch auto`: probe, then measure the candidates; the fastest comes first."""
    from gptbench.reports.text import short
    from gptbench.studies.autobatch import auto_batch
    from gptbench.views.tables import probes_table

    with err.status("searching for the largest micro-batch that fits…") as status:

        def on_probe(p: Probe) -> None:
            status.update(f"micro-batch {p.micro_batch}: {short(p.why)}")

        def on_run(r: Run) -> None:
            status.update(f"measured {r.name}: {r.result.status}")

        found = auto_batch(config, memory_limit_gb, headroom, max_batch, on_probe, on_run, step_limit_s)
    err.print(probes_table(found))
    return found.runs
