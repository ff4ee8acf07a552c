"""Time (and, with prices, money) for a whole training run at a given throughput.

Pure arithmetic over a Throughput (measured, projected or given) and the user's GPUs, price and power: no files,
no printing. Where the throughput comes from is gptbench/cloud/throughput.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from gptbench.errors import GptbenchError
from gptbench.hardware.specs import find_gpu
from gptbench.predict.scaling import DDP_FACTOR, modelled_efficiency, phases_for, scaling_band, scaling_evidence
from gptbench.predict.workload import Workload

FINEWEB_10B_TOKENS = 10e9  # the FineWeb-Edu/FineWeb 10B-token GPT-2 sample (llm.c, nanoGPT speedruns)
PRICE_PER = ("gpu", "instance")


def hours_for(tokens: float, tokens_per_sec: float) -> float:
    """Wall-clock hours to process `tokens` at `tokens_per_sec`."""
    return tokens / tokens_per_sec / 3600


@dataclass(frozen=True)
class Throughput:
    """Tokens per second for a number of GPUs, and where that figure comes from."""

    tokens_per_sec: float  # global, over `gpus` GPUs
    basis: str  # measured | projected | given
    source: str  # the report file and run, the projection, or the option
    gpus: int = 1
    config: str | None = None  # the configuration the figure is for, in words
    gpu: str | None = None  # a gpus.csv name, when known
    tokens_per_sec_p10: float | None = None  # slow end: of the measured steps, or of a projection's error band
    tokens_per_sec_p90: float | None = None
    range_basis: str = "p90–p10 speed"  # what the range is: the measured steps' spread, or the held-out band
    evidence: str | None = None  # what backs it: who measured it, the point it was carried from, or why projected
    power_w: float | None = None  # measured average power of those GPUs (report telemetry), when present
    scaling_efficiency: float | None = None  # measured multi-GPU efficiency (report), when present
    memory_gb: float | None = None  # projected peak memory (projections only)
    memory_capacity_gb: float | None = None
    memory_measured: bool = False  # memory_gb is a reserved figure measured at this configuration (+ context)
    notes: tuple[str, ...] = ()
    device: str = "GPU"  # what `gpus` counts: GPU, or CPU / MPS for reports measured there

    @property
    def fits(self) -> bool | None:
        if self.memory_gb is None or self.memory_capacity_gb is None:
            return None
        return self.memory_gb <= self.memory_capacity_gb

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data; the range's basis only where there is a range."""
        return {
            "tokens_per_sec": self.tokens_per_sec,
            "basis": self.basis,
            "source": self.source,
            "gpus": self.gpus,
            "gpu": self.gpu,
            "config": self.config,
            "tokens_per_sec_p10": self.tokens_per_sec_p10,
            "tokens_per_sec_p90": self.tokens_per_sec_p90,
            "range_basis": self.range_basis if self.tokens_per_sec_p10 else None,
            "evidence": self.evidence,
            "notes": list(self.notes),
            "power_w": self.power_w,
            "scaling_efficiency": self.scaling_efficiency,
            "memory_estimate_gb": self.memory_gb,
            "memory_capacity_gb": self.memory_capacity_gb,
            "memory_measured": self.memory_measured,
            "fits": self.fits,
        }


@dataclass(frozen=True)
class RunPlan:
    """What the user asks: tokens, GPUs, and the money and power to price them with."""

    tokens: float
    tokens_how: str = ""
    gpus: int | None = None  # None: as many as the throughput was measured on
    scaling_efficiency: float | None = None  # None: measured if known, else the scaling model's (predict/scaling.py)
    price_usd: float | None = None  # per hour, per GPU or per instance (price_per)
    price_per: str = "gpu"
    overhead: float = 0.0  # fraction of extra time for evaluation, checkpointing, restarts
    kwh_price_usd: float | None = None
    power_w: float | None = None  # the user's own figure for the whole machine, overriding all others

    def __post_init__(self) -> None:
        if not self.tokens > 0:
            raise GptbenchError(f"--tokens must be positive, got {self.tokens:g}")
        if self.gpus is not None and self.gpus <= 0:
            raise GptbenchError(f"--gpus must be a positive whole number, got {self.gpus}")
        if self.scaling_efficiency is not None and not 0 < self.scaling_efficiency <= 1:
            raise GptbenchError(f"--scaling-efficiency must be in (0, 1], got {self.scaling_efficiency:g}")
        for name, flag in (("price_usd", "--price"), ("kwh_price_usd", "--kwh-price"), ("power_w", "--power-w")):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise GptbenchError(f"{flag} must be positive, got {value:g}")
        if self.price_per not in PRICE_PER:
            raise GptbenchError(f"--price-per {self.price_per}: choose gpu or instance")
        if not 0 <= self.overhead < 10:
            raise GptbenchError(f"--overhead is a fraction of extra time (0.1 = 10%), got {self.overhead:g}")


@dataclass(frozen=True)
class Electricity:
    power_w: float
    power_basis: str  # measured | given | assumed (board power)
    kwh: float
    kwh_price_usd: float
    cost_usd: float


@dataclass(frozen=True)
class Estimate:
    """Hours and dollars for a run, with every assumption that went into them."""

    plan: RunPlan
    throughput: Throughput
    gpus: int
    scaling_efficiency: float
    scaling_basis: str  # given | measured | modelled | as measured (same GPU count) | none (one GPU)
    tokens_per_sec: float  # global, at `gpus`
    hours: float  # overhead included
    hours_range: tuple[float, float] | None  # at the fast and slow end of the throughput's range
    price_per_hour_usd: float | None  # all GPUs
    cost_usd: float | None
    cost_range_usd: tuple[float, float] | None
    electricity: Electricity | None
    assumptions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (`gptbench estimate --json`); `basis` says measured, projected or given for every derived number."""
        return {
            "tokens": self.plan.tokens,
            "tokens_how": self.plan.tokens_how,
            "basis": self.throughput.basis,
            "throughput": self.throughput.to_dict(),
            "gpus": self.gpus,
            "scaling_efficiency": self.scaling_efficiency,
            "scaling_basis": self.scaling_basis,
            "tokens_per_sec": self.tokens_per_sec,
            "overhead": self.plan.overhead,
            "hours": self.hours,
            "days": self.hours / 24,
            "hours_range": list(self.hours_range) if self.hours_range else None,
            "price_per_hour_usd": self.price_per_hour_usd,
            "cost_usd": self.cost_usd,
            "cost_range_usd": list(self.cost_range_usd) if self.cost_range_usd else None,
            "electricity": None if self.electricity is None else asdict(self.electricity),
            "assumptions": self.assumptions,
        }


def modelled_scaling(throughput: Throughput, gpus: int, workload: Workload | None) -> float:
    """The scaling model's efficiency at `gpus`, the one `plan` uses: the link model x DDP_FACTOR for a GPU of the spec
    table and the configuration asked, else DDP_FACTOR alone (no link to model)."""
    try:
        spec = find_gpu(throughput.gpu) if throughput.gpu and workload is not None else None
    except GptbenchError:  # a GPU of the user's own spec table: no link figure of ours
        spec = None
    if spec is None or workload is None:
        return DDP_FACTOR
    one_gpu = throughput.tokens_per_sec / throughput.gpus / (throughput.scaling_efficiency or 1.0)
    try:
        return modelled_efficiency(workload, spec, gpus, phases_for(workload, spec, one_gpu))
    except GptbenchError:  # the projection cannot time this dtype on this GPU (a V100's bf16): no phases to overlap
        return DDP_FACTOR


def scaling_for(plan: RunPlan, throughput: Throughput, gpus: int, workload: Workload | None = None) -> tuple[float, str]:
    """The multi-GPU efficiency to use at `gpus`, and whether it was given, measured or modelled."""
    if gpus == throughput.gpus:
        return (throughput.scaling_efficiency or 1.0), ("as measured" if throughput.gpus > 1 else "none")
    if plan.scaling_efficiency is not None:
        return plan.scaling_efficiency, "given"
    if gpus == 1:
        return 1.0, "none"
    if throughput.scaling_efficiency is not None:
        return throughput.scaling_efficiency, "measured"
    return modelled_scaling(throughput, gpus, workload), "modelled"


def rate_at(throughput: Throughput, gpus: int, efficiency: float) -> float:
    """Global tokens/s on `gpus`: as measured when the count matches, else one GPU's rate x gpus x efficiency."""
    if gpus == throughput.gpus:
        return throughput.tokens_per_sec
    measured_eff = throughput.scaling_efficiency if throughput.gpus > 1 and throughput.scaling_efficiency else 1.0
    one_gpu = throughput.tokens_per_sec / throughput.gpus / measured_eff
    return one_gpu * gpus * (efficiency if gpus > 1 else 1.0)


def electricity_for(plan: RunPlan, throughput: Throughput, gpus: int, hours: float, board_power_w: float | None) -> Electricity:
    """Energy and its price: the user's --power-w, else the report's measured power, else board power x GPUs."""
    assert plan.kwh_price_usd is not None
    if plan.power_w is not None:
        power, basis = plan.power_w, "given"
    elif throughput.power_w is not None:
        power, basis = throughput.power_w * gpus / throughput.gpus, "measured"
    elif board_power_w is not None:
        power, basis = board_power_w * gpus, "assumed"
    else:
        raise GptbenchError(
            "--kwh-price: no power figure for this hardware (no measured power in the report, no board power in the spec "
            "table); pass --power-w WATTS for the whole machine"
        )
    kwh = power * hours / 1000
    return Electricity(power, basis, kwh, plan.kwh_price_usd, kwh * plan.kwh_price_usd)


def estimate(
    plan: RunPlan, throughput: Throughput, board_power_w: float | None = None, workload: Workload | None = None
) -> Estimate:
    """Hours, dollars and (with a kWh price) electricity for `plan` at `throughput`; `board_power_w` is one GPU's,
    `workload` the configuration the scaling model prices the gradient traffic of (none: DDP_FACTOR alone)."""
    gpus = plan.gpus or throughput.gpus
    efficiency, basis = scaling_for(plan, throughput, gpus, workload)
    rate = rate_at(throughput, gpus, efficiency)
    stretch = 1 + plan.overhead
    hours = hours_for(plan.tokens, rate) * stretch
    slow_end, fast_end = scaling_band(efficiency) if basis == "modelled" else (1.0, 1.0)
    hours_range = (hours / fast_end, hours / slow_end) if basis == "modelled" else None
    if throughput.tokens_per_sec_p10 and throughput.tokens_per_sec_p90:
        fast, slow = throughput.tokens_per_sec_p90 * fast_end, throughput.tokens_per_sec_p10 * slow_end
        hours_range = (hours * throughput.tokens_per_sec / fast, hours * throughput.tokens_per_sec / slow)
    price = None
    if plan.price_usd is not None:
        price = plan.price_usd * (gpus if plan.price_per == "gpu" else 1)
    cost = hours * price if price is not None else None
    cost_range = (hours_range[0] * price, hours_range[1] * price) if hours_range and price is not None else None
    power = electricity_for(plan, throughput, gpus, hours, board_power_w) if plan.kwh_price_usd is not None else None
    result = Estimate(plan, throughput, gpus, efficiency, basis, rate, hours, hours_range, price, cost, cost_range, power)
    result.assumptions.extend(assumptions(result))
    return result


def assumptions(e: Estimate) -> list[str]:
    """What a reader must know to trust (or redo) the numbers, one line each."""
    t, plan = e.throughput, e.plan
    lines = [f"tokens: {plan.tokens:,.0f} ({plan.tokens_how})" if plan.tokens_how else f"tokens: {plan.tokens:,.0f}"]
    lines.append(f"throughput: {t.tokens_per_sec:,.0f} tok/s on {t.gpus} {t.device}(s), {t.basis}, from {t.source}")
    if t.evidence:
        lines.append(f"evidence: {t.evidence}")
    if t.config:
        lines.append(f"configuration: {t.config}")
    lines.extend(t.notes)
    if e.scaling_basis in ("given", "modelled", "measured") and e.gpus != t.gpus:
        why = {"given": "--scaling-efficiency", "measured": "measured in the report", "modelled": "the scaling model"}
        lines.append(f"{e.gpus} {t.device}s at scaling efficiency {e.scaling_efficiency:.2f} ({why[e.scaling_basis]})")
        if e.scaling_basis == "modelled":
            lines.append(scaling_evidence(None, e.gpus) + "; the time range includes it")
    if plan.overhead:
        lines.append(f"overhead: +{plan.overhead:.0%} time for evaluation, checkpoints and restarts (--overhead)")
    if e.price_per_hour_usd is not None:
        per = f"${plan.price_usd:g}/GPU-hour × {e.gpus}" if plan.price_per == "gpu" else f"${plan.price_usd:g}/hour per instance"
        lines.append(f"price: {per} = ${e.price_per_hour_usd:,.2f}/hour (--price; prices change, check the provider)")
    if e.electricity is not None:
        el = e.electricity
        how = {"given": "--power-w", "measured": "measured in the report", "assumed": "board power from the spec table"}
        line = f"electricity: {el.power_w:,.0f} W ({how[el.power_basis]}) at ${el.kwh_price_usd:g}/kWh"
        if el.power_basis == "measured" and e.gpus != t.gpus:
            line += f", the power measured on {t.gpus} scaled to {e.gpus}"
        gpus_only = "; GPUs only, not the rest of the machine (pass --power-w for that)"
        # NVML's measured power is the GPUs' draw too: both leave out CPUs, fans and the power supply's losses.
        lines.append(line + (gpus_only if el.power_basis in ("assumed", "measured") else ""))
    return lines
