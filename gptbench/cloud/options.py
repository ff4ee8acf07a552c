"""What a plan is made of: the request (the run, the limits, the machines to consider) and one option (a place to
run with its best configuration, time, set-up and cost). Below plan.py and answers.py, which both read them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from gptbench.cloud.setup import Setup
from gptbench.errors import GptbenchError

DEFAULT_TOKENS_PER_STEP = 2**19  # 524,288: llm.c's run_gpt2_124M.sh (-d 524288) and nanoGPT's ~0.5M for GPT-2 124M


@dataclass(frozen=True)
class PlanRequest:
    """What the user asks: the run, the limits, and which machines to consider."""

    tokens: float
    tokens_how: str = ""
    model: str = "124m"
    seq: int | None = None
    tokens_per_step: int = DEFAULT_TOKENS_PER_STEP
    max_hours: float | None = None
    budget_usd: float | None = None
    kwh_price_usd: float | None = None
    power_w: float | None = None  # your machine's whole draw, for --kwh-price
    gpu: str | None = None  # filter, or with `gpus` a machine no offer matches
    gpus: int | None = None
    price_usd: float | None = None  # $/GPU-hour for the --gpu X --gpus N machine
    vcpus: int | None = None  # the --gpu X --gpus N machine's CPUs: its set-up bills tokenizing on them (unknown: 1 worker)
    checkpoint_every: int | None = 1000
    data: str = "tokenize"

    def __post_init__(self) -> None:
        for name, flag in (("max_hours", "--max-hours"), ("budget_usd", "--budget"), ("price_usd", "--price")):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise GptbenchError(f"{flag} must be positive, got {value:g}")
        if self.gpus is not None and self.gpus <= 0:
            raise GptbenchError(f"--gpus must be a positive whole number, got {self.gpus}")
        if self.tokens_per_step <= 0:
            raise GptbenchError(f"--tokens-per-step must be a positive whole number, got {self.tokens_per_step}")
        if self.checkpoint_every is not None and self.checkpoint_every < 0:
            raise GptbenchError(f"--checkpoint-every must be 0 (none) or a number of steps, got {self.checkpoint_every}")
        if self.price_usd is not None and not (self.gpu and self.gpus):
            raise GptbenchError("--price prices a machine you name: pass it with --gpu NAME --gpus N")
        if self.vcpus is not None and not (self.gpu and self.gpus):
            raise GptbenchError("--vcpus describes a machine you name: pass it with --gpu NAME --gpus N")
        if self.vcpus is not None and self.vcpus <= 0:
            raise GptbenchError(f"--vcpus must be a positive whole number, got {self.vcpus}")


@dataclass(frozen=True)
class Option:
    """One place to run: a catalog offer, a machine of yours, or one you named, with its best configuration."""

    where: str
    kind: str  # catalog | own | named
    gpu: str
    gpus: int
    basis: str  # projected | measured
    evidence: str
    micro_batch: int | None = None
    grad_accum: int | None = None
    sharding: str = "none"
    activation_checkpointing: bool = False
    fits: bool | None = None
    memory_gb: float | None = None
    memory_capacity_gb: float | None = None
    tokens_per_sec: float | None = None
    tokens_per_sec_range: tuple[float, float] | None = None  # slow end, fast end
    scaling_efficiency: float = 1.0
    scaling_basis: str = "none (one GPU)"
    train_hours: float | None = None
    setup: Setup | None = None
    price_per_hour_usd: float | None = None
    price_basis: str = ""
    cost_usd: float | None = None
    hours_range: tuple[float, float] | None = None
    cost_range_usd: tuple[float, float] | None = None
    note: str = ""  # sharding/checkpointing labels, a configuration that differs from the one asked
    problem: str = ""  # why there is no figure: does not fit (and what would), no price, another model measured
    pareto: bool = False

    @property
    def setup_hours(self) -> float | None:
        return self.setup.hours if self.setup else None

    @property
    def hours(self) -> float | None:
        return None if self.train_hours is None or self.setup is None else self.train_hours + self.setup.hours

    @property
    def backed_by(self) -> str:
        """The basis as a reader should take it: one GPU measured and scaled by the model is not a measurement of N."""
        if self.basis == "measured" and self.gpus > 1 and self.scaling_basis == "modelled":
            return "measured, scaled"  # one GPU measured, the rest by the scaling model
        return self.basis

    def to_dict(self) -> dict[str, Any]:
        """The option as JSON-ready data (hours and cost with their bands; None where there is no figure)."""
        data = asdict(self)
        data["setup"] = self.setup.to_dict() if self.setup else None
        data.update(setup_hours=self.setup_hours, hours=self.hours, backed_by=self.backed_by)
        for key in ("tokens_per_sec_range", "hours_range", "cost_range_usd"):
            data[key] = list(data[key]) if data[key] else None
        return data
