"""`plan`: where and how to run a whole training run. Every catalog offer, every machine of yours with a report, and
a machine you name, each with the fastest configuration that fits its memory, multi-GPU scaling from the link
model (scaling.py), set-up time billed (setup.py), the options ranked by cost, the Pareto front marked, and answers to
"cheapest by the deadline", "fastest within the budget", "on my own machine". Pure data; never imports torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from gptbench.cloud.answers import Answer, answers, pareto
from gptbench.cloud.estimate import RunPlan, Throughput, electricity_for
from gptbench.cloud.options import Option, PlanRequest
from gptbench.cloud.prices import Offer, current_offers
from gptbench.cloud.setup import Setup, setup_for, setup_lines
from gptbench.cloud.throughput import from_run, measured_on, pick_run, precision_for, workload_for
from gptbench.errors import GptbenchError
from gptbench.hardware.specs import GpuSpec, find_gpu, match_device
from gptbench.predict.fit import best_config, sequences_per_gpu, what_would_fit
from gptbench.predict.order import estimate_for
from gptbench.predict.scaling import scaling_band, scaling_evidence, scaling_model_line
from gptbench.predict.workload import Workload, memory_estimate_gb
from gptbench.reports.schema import Run
from gptbench.reports.store import find_reports, load_report, scan_reports

SWITCHES = "measure it with run --nproc N --shard optimizer|full, --activation-checkpointing"


@dataclass(frozen=True)
class Plan:
    """Every option ranked by cost, the answers, and the assumptions behind them."""

    request: PlanRequest
    options: tuple[Option, ...]
    answers: dict[str, Answer | None]
    assumptions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON: {"request", "options": [...], "answers": {...}, "assumptions": [...]}."""
        return {
            "schema": "gptbench.plan/1",
            "request": asdict(self.request),
            "options": [o.to_dict() for o in self.options],
            "answers": {key: (a.to_dict() if a else None) for key, a in self.answers.items()},
            "assumptions": list(self.assumptions),
        }


def _label(w: Workload) -> str:
    parts = {"optimizer": "sharded optimizer state (ZeRO-1)", "full": "FSDP (weights, gradients, state sharded)"}
    labels = [parts[w.sharding]] if w.sharding != "none" else []
    labels += ["activation checkpointing"] if w.activation_checkpointing else []
    return f"needs {' + '.join(labels)}: {SWITCHES}" if labels else ""


def _measured_band(rate: float, p10: float | None, p90: float | None) -> tuple[float, float]:
    """A measured rate's band as factors on it: its p10 and p90 steps (none recorded: the rate itself)."""
    return (p10 / rate, p90 / rate) if p10 and p90 else (1.0, 1.0)


def _with_scaling(band: tuple[float, float], efficiency: float) -> tuple[float, float]:
    """`band` widened by the scaling model's band, for a rate that a modelled `efficiency` multiplies."""
    low, high = scaling_band(efficiency)
    return band[0] * low, band[1] * high


def _bands(rate: float, band: tuple[float, float], train_h: float, setup_h: float, price: float | None) -> dict[str, Any]:
    rates = (rate * band[0], rate * band[1])
    hours = (train_h / band[1] + setup_h, train_h / band[0] + setup_h)
    costs = (hours[0] * price, hours[1] * price) if price is not None else None
    return {"tokens_per_sec_range": rates, "hours_range": hours, "cost_range_usd": costs}


def _base(req: PlanRequest) -> Workload:
    return workload_for(req.model, req.seq, 1, "bf16", True, "sdpa")


def _setup(req: PlanRequest, w: Workload, warmup_s: float | None = None) -> Setup:
    return setup_for(w.n_params, w.n_layer, req.tokens, req.tokens_per_step, req.checkpoint_every, req.data, warmup_s)


def measured_gpus(folder: Path) -> frozenset[str]:
    """The spec-table GPUs that some report in `folder` ran on: only those are worth searching for a measurement."""
    files = tuple((str(path), path.stat().st_mtime_ns) for path in find_reports(folder))  # a changed file is re-read
    return _gpus_in(files)


@lru_cache(maxsize=8)
def _gpus_in(files: tuple[tuple[str, int], ...]) -> frozenset[str]:
    names = set()
    for path, _ in files:
        try:
            accel = load_report(path).machine.accelerator
        except (GptbenchError, ValueError):
            continue  # unreadable: own_options lists it with the reason
        spec = match_device(accel.name) if accel.kind == "cuda" and accel.name else None
        names.update([spec.name] if spec else [])
    return frozenset(names)


def gpu_option(
    req: PlanRequest, where: str, kind: str, spec: GpuSpec, gpus: int, price: float | None, price_basis: str, folder: Path
) -> Option:
    """One machine of `gpus` x `spec`: the fastest configuration that fits, its time, set-up and cost."""
    base, precision_note = precision_for(spec, _base(req))
    head: dict[str, Any] = dict(where=where, kind=kind, gpu=spec.name, gpus=gpus, price_per_hour_usd=price)
    head["price_basis"] = price_basis
    try:
        per_gpu = sequences_per_gpu(req.tokens_per_step, base.seq_len, gpus)
        config = best_config(base, spec, gpus, per_gpu)
    except GptbenchError as e:
        return Option(**head, basis="projected", evidence="", problem=str(e))
    if config is None:
        return Option(
            **head,
            basis="projected",
            evidence="",
            fits=False,
            memory_capacity_gb=spec.memory_gb,
            problem=what_would_fit(base, spec, gpus),
        )
    w, efficiency = config.workload, config.efficiency
    # One GPU's rate in the order of predict/order.py (measured, carried, projected); the step as one GPU runs it.
    found = estimate_for(spec, replace(w, world_size=1, sharding="none"))
    single, band = found.tokens_per_sec, _measured_band(found.tokens_per_sec, found.low, found.high)
    basis, scaling_basis, label = found.step, "modelled" if gpus > 1 else "none (one GPU)", found.label
    if gpus > 1:
        label += "; " + scaling_evidence(spec, gpus)
        band = _with_scaling(band, efficiency)
    measured = measured_on(spec, w, folder)[0] if spec.name in measured_gpus(folder) else None  # same switches only
    if measured is not None:  # a measurement on this GPU and configuration wins over the projection
        basis, label = "measured", f"measured: {measured.source}"
        single = measured.tokens_per_sec / measured.gpus / (measured.scaling_efficiency or 1.0)
        if measured.scaling_efficiency and gpus == measured.gpus > 1:  # efficiency holds for its own GPU count
            efficiency, scaling_basis = measured.scaling_efficiency, f"measured ({measured.source})"
        band = _measured_band(measured.tokens_per_sec, measured.tokens_per_sec_p10, measured.tokens_per_sec_p90)
        if gpus > 1 and scaling_basis == "modelled":  # measured on another GPU count: the scaling model's band too
            band = _with_scaling(band, efficiency)
    rate = single * gpus * efficiency
    train_h, setup = req.tokens / rate / 3600, _setup(req, w)
    cost = (train_h + setup.hours) * price if price is not None else None
    notes = [n for n in (_label(w), precision_note, "" if price is not None else "no price: pass --price $/GPU-hour") if n]
    return Option(
        **head,
        basis=basis,
        evidence=label,
        micro_batch=w.micro_batch,
        grad_accum=w.grad_accum,
        sharding=w.sharding,
        activation_checkpointing=w.activation_checkpointing,
        fits=True,
        memory_gb=memory_estimate_gb(w),
        memory_capacity_gb=spec.memory_gb,
        tokens_per_sec=rate,
        scaling_efficiency=efficiency,
        scaling_basis=scaling_basis,
        train_hours=train_h,
        setup=setup,
        cost_usd=cost,
        note="; ".join(notes),
        **_bands(rate, band, train_h, setup.hours, price),
    )


def own_options(req: PlanRequest, folder: Path) -> list[Option]:
    """Every report in `folder` as a machine of yours: its fastest ok run of the asked model and sequence length,
    measured, priced by electricity at --kwh-price; a report of other models is listed with that said."""
    base, options = _base(req), []
    for path in scan_reports(folder)[0]:  # an unreadable file is no machine: the command warns about it
        try:
            report, raw, _ = pick_run(path)
        except GptbenchError as e:
            options.append(Option(path.name, "own", "?", 1, "measured", "", problem=str(e)))
            continue
        accel = report.machine.accelerator
        where = f"yours: {report.machine.hostname} ({accel.name or accel.kind})"
        same = [
            i
            for i, run in enumerate(report.runs)
            if run.result.status == "ok"
            and run.result.tokens_per_sec
            and run.config.seq_len == base.seq_len
            and (run.config.model.n_layer, run.config.model.n_embd) == (base.n_layer, base.n_embd)
        ]
        gpus = report.runs[0].config.world_size
        if not same:
            models = sorted({r.config.model.preset or f"{r.config.model.n_layer} layers" for r in report.runs})
            problem = f"{path.name} measured {', '.join(models)}, not this model at seq {base.seq_len}: run `gptbench run` for it"
            options.append(Option(where, "own", accel.name or accel.kind, gpus, "measured", "", problem=problem))
            continue
        best = max(same, key=lambda i: report.runs[i].result.tokens_per_sec or 0.0)
        throughput = from_run(path, report, raw, best)
        options.append(_own_option(req, where, throughput, report.runs[best], path, report.machine.cpu.cores))
    return options


def _own_option(req: PlanRequest, where: str, t: Throughput, run: Run, path: Path, vcpus: int | None) -> Option:
    spec = find_gpu(t.gpu) if t.gpu else None
    hours = req.tokens / t.tokens_per_sec / 3600
    setup = setup_for(
        run.config.model.n_params,
        run.config.model.n_layer,
        req.tokens,
        req.tokens_per_step,
        req.checkpoint_every,
        req.data,
        run.result.warmup_s,
        vcpus,
    )
    price, basis, notes = None, "", []
    if req.kwh_price_usd is not None:
        try:
            power = electricity_for(
                RunPlan(1.0, kwh_price_usd=req.kwh_price_usd, power_w=req.power_w),
                t,
                t.gpus,
                1.0,
                spec.board_power_w if spec else None,
            )
            price = power.cost_usd
            basis = f"electricity: {power.power_w:,.0f} W ({power.power_basis}) at ${power.kwh_price_usd:g}/kWh"
        except GptbenchError:
            notes.append("no power figure in the report or spec table: pass --power-w WATTS to price the electricity")
    else:
        notes.append("electricity not priced: pass --kwh-price")
    if run.config.tokens_per_step != req.tokens_per_step:
        notes.append(f"measured at {run.config.tokens_per_step:,} tokens per step (asked {req.tokens_per_step:,})")
    band = _measured_band(t.tokens_per_sec, t.tokens_per_sec_p10, t.tokens_per_sec_p90)
    cost = (hours + setup.hours) * price if price is not None else None
    efficiency = t.scaling_efficiency or 1.0
    return Option(
        where,
        "own",
        t.gpu or t.device.lower(),
        t.gpus,
        "measured",
        f"measured: {path} ({t.config})",
        micro_batch=run.config.micro_batch,
        grad_accum=run.config.grad_accum,
        sharding=run.config.shard,
        activation_checkpointing=run.config.activation_checkpointing,
        fits=True,
        tokens_per_sec=t.tokens_per_sec,
        scaling_efficiency=efficiency,
        scaling_basis="measured" if t.scaling_efficiency else "as measured",
        train_hours=hours,
        setup=setup,
        price_per_hour_usd=price,
        price_basis=basis,
        cost_usd=cost,
        note="; ".join(notes),
        **_bands(t.tokens_per_sec, band, hours, setup.hours, price),
    )


def catalog_options(req: PlanRequest, folder: Path, catalog_file: Path | None) -> list[Option]:
    """Every current offer (filtered by --gpu/--gpus) at its GPU count; offers of the same GPUs share the search."""
    offers, _ = current_offers(catalog_file)
    wanted = find_gpu(req.gpu).name if req.gpu else None
    chosen = [o for o in offers if (wanted is None or o.gpu == wanted) and (req.gpus is None or o.gpus == req.gpus)]
    computed: dict[tuple[str, int], Option] = {}
    options = []
    for offer in chosen:
        key = (offer.gpu, offer.gpus)
        if key not in computed:
            try:
                spec = find_gpu(offer.gpu)
            except GptbenchError as e:
                options.append(Option(_where(offer), "catalog", offer.gpu, offer.gpus, "projected", "", problem=str(e)))
                continue
            computed[key] = gpu_option(req, "", "catalog", spec, offer.gpus, None, "", folder)
        options.append(_priced(computed[key], offer))
    return options


def _where(offer: Offer) -> str:
    return f"{offer.provider} {offer.instance}"


def _on_cpus(option: Option, vcpus: int | None) -> Option:
    """The option with its set-up's tokenizing billed on `vcpus` CPUs (None: one worker), its hours, bands and cost
    moved by the difference."""
    setup = replace(option.setup, vcpus=vcpus) if option.setup else None
    shift = (setup.hours - option.setup.hours) if setup and option.setup else 0.0  # tokenizing on more CPUs
    ranges = (option.hours_range[0] + shift, option.hours_range[1] + shift) if option.hours_range else None
    hours, price = (option.hours + shift if option.hours is not None else None), option.price_per_hour_usd
    return replace(
        option,
        setup=setup,
        hours_range=ranges,
        cost_usd=hours * price if hours is not None and price is not None else None,
        cost_range_usd=(ranges[0] * price, ranges[1] * price) if ranges and price is not None else None,
    )


def _priced(option: Option, offer: Offer) -> Option:
    """The shared option of this GPU count, priced at this offer and its set-up billed at the offer's vCPUs (notes
    about a missing price dropped)."""
    price = offer.price_per_hour_usd
    note = "; ".join(n for n in option.note.split("; ") if n and not n.startswith("no price"))
    priced = replace(
        option,
        where=_where(offer),
        price_per_hour_usd=price,
        note=note,
        price_basis=f"{offer.price_basis} ${price:,.2f}/h observed {offer.observed} ({offer.source})",
    )
    return _on_cpus(priced, offer.vcpus)


def named_option(req: PlanRequest, offers: list[Option], folder: Path) -> Option | None:
    """--gpu X --gpus N: the machine itself when no offer matches it, or when --price prices it."""
    if not (req.gpu and req.gpus) or (any(o.kind == "catalog" and o.problem == "" for o in offers) and req.price_usd is None):
        return None
    spec = find_gpu(req.gpu)
    price = req.price_usd * req.gpus if req.price_usd is not None else None
    basis = f"--price ${req.price_usd:g}/GPU-hour × {req.gpus}" if req.price_usd is not None else ""
    option = gpu_option(req, f"{req.gpus}× {spec.name} (named with --gpu/--gpus)", "named", spec, req.gpus, price, basis, folder)
    return _on_cpus(option, req.vcpus) if req.vcpus else option


def make_plan(req: PlanRequest, reports_dir: str | Path, catalog_file: str | Path | None = None) -> Plan:
    """Every option for the run in `req`, ranked by cost (options without a cost last), Pareto-marked, answered."""
    folder = Path(reports_dir)
    sequences_per_gpu(req.tokens_per_step, _base(req).seq_len, req.gpus or 1)  # bad --tokens-per-step: one line, exit 2
    options = catalog_options(req, folder, Path(catalog_file) if catalog_file else None)
    named = named_option(req, options, folder)
    options += [named] if named else []
    options += own_options(req, folder) if req.gpu is None else []
    options = pareto(options)
    options.sort(key=lambda o: (o.cost_usd is None, o.cost_usd or 0.0, o.hours is None, o.hours or 0.0))
    return Plan(req, tuple(options), answers(req, options), plan_assumptions(req))


def plan_assumptions(req: PlanRequest) -> list[str]:
    """What every row assumes, one line each."""
    w = _base(req)
    lines = [
        f"tokens: {req.tokens:,.0f}" + (f" ({req.tokens_how})" if req.tokens_how else ""),
        f"model: {req.model}, {w.n_layer} layers × {w.n_embd} wide ({w.n_params / 1e6:,.1f}M params), seq {w.seq_len}, bf16,"
        f" compiled, sdpa, fused AdamW; {req.tokens_per_step:,} tokens per optimizer step (--tokens-per-step), split as"
        " micro-batch × accumulation × GPUs",
        "configuration: the fastest micro-batch that fits the memory model (weights, gradients, AdamW state, activations,"
        " the allocator's slack and the CUDA context, corrected by gptbench's H200 runs) against the datasheet memory;"
        " where none fits, sharded optimizer state, then FSDP, then"
        f" activation checkpointing ({SWITCHES})",
        "speed: one GPU's rate measured (the reports folder or the reference set, this GPU and configuration), else carried"
        " from the nearest measurement of this GPU by the model's ratio, else projected by the roofline (evidence per row);"
        " bands: what each held out (docs/methodology.md), times the scaling model's on several GPUs",
        f"multi-GPU: {scaling_model_line()}; a report's measured scaling efficiency wins",
        *setup_lines(_setup(req, w), req.data, req.checkpoint_every),
        "prices: the catalog's $/hour for the whole instance on the date observed (--json has each source); yours: "
        "electricity at --kwh-price",
    ]
    return lines
