"""Numbers and configurations as text, the same way in every view and error message: rates, sizes, hours, a run's
configuration in one line. Torch-free, like everything in `reports`."""

from __future__ import annotations

from rich.markup import escape

from gptbench.reports.schema import Run

GB = 1e9  # memory figures are decimal gigabytes throughout, as GPU datasheets count them


def fmt_rate(tokens_per_sec: float | None) -> str:
    """12,345 tok/s, or n/a."""
    return "n/a" if tokens_per_sec is None else f"{tokens_per_sec:,.0f} tok/s"


def short(message: str | None, limit: int = 90) -> str:
    """An error message cut to one readable line, with rich markup escaped (torch's start with `[enforce ...]`)."""
    text = " ".join((message or "").split())
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")


def fmt_gb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} GB"


def fmt_hours(hours: float) -> str:
    """Hours, with days alongside when it runs past two days."""
    return f"{hours:,.1f} h" + (f" ({hours / 24:,.1f} days)" if hours >= 48 else "")


def describe_config(run: Run) -> str:
    """`124m · seq 1024 × batch 16 × accum 1 · bf16 · compile · sdpa · fused AdamW` in one line."""
    c = run.config
    parts = [
        f"{c.model.preset} ({c.model.n_params / 1e6:,.1f}M params, vocab {c.model.vocab_size})",
        f"seq {c.seq_len} × batch {c.micro_batch} × accum {c.grad_accum}"
        + (f" × {c.world_size} ranks" if c.world_size > 1 else ""),
        *how_it_runs(run),
        f"data {c.data}",
    ]
    return " · ".join(parts + switches(run))


def how_it_runs(run: Run) -> list[str]:
    """Precision, compilation, attention, AdamW and, where not the plain ones, the loss: `bf16 + tf32`, `compiled`..."""
    c = run.config
    mode = "" if c.compile_mode == "default" else f" ({c.compile_mode})"
    return [
        c.dtype + (" + tf32" if c.tf32 else "") + (" + FP8 linears" if c.fp8 else ""),
        f"compiled{mode}" if c.compile else "eager",
        c.attention,
        f"{c.adamw_impl} AdamW",
        *([f"{c.loss} loss"] if c.loss != "standard" else []),
    ]


def switches(run: Run) -> list[str]:
    """The memory switches a run was measured with, in words; none for a plain run."""
    c = run.config
    words = {"optimizer": "ZeRO-1 (optimizer state sharded)", "full": "FSDP (weights, gradients, state sharded)"}
    return ([words[c.shard]] if c.shard in words else []) + (["activation checkpointing"] if c.activation_checkpointing else [])
