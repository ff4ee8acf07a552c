"""Set-up time a run is billed for besides training: compile warm-up, data preparation and checkpoint writes.

Every figure here is measured (machine and date), cited (source and date) or an assumption that says so; `plan`
prints them under its table. Never imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gptbench.errors import GptbenchError

# `gptbench prepare --workers 1` tokenizing jsonl documents: 2,209,480 tokens/s, measured 2026-11-28 on a 2-core AMD
# EPYC VM under load (benchmarks/README.md, "`prepare`: tokenizer throughput", benchmarks/prepare_throughput.py).
PREPARE_TOKENS_PER_SEC = 2_209_480
PREPARE_SOURCE = "prepare --workers 1: 2,209,480 tok/s, measured 2026-11-28 on a 2-core AMD EPYC VM (benchmarks/README.md)"
# How prepare scales with workers is NOT measured: the only multi-worker figure (2 workers on that loaded 2-core VM,
# 852,220 tok/s each) shows contention, not scaling (benchmarks/README.md). A rented machine is billed at prepare's
# default worker count (its vCPUs less one, data/prepare.py default_workers), each at the one-worker rate: an
# assumption, and an optimistic one. A machine whose vCPU count the catalog does not list is billed at one worker.
# FineWeb-10B is published already tokenized with GPT-2's BPE in llm.c's shard format (Hugging Face dataset
# kjj0/fineweb10B-gpt2, downloaded by KellerJordan/modded-nanogpt data/cached_fineweb10B.py: "saves about an hour of
# startup time compared to regenerating them"): with those shards, --data shards bills nothing for tokenizing.
PRESHARDED = "FineWeb-10B comes pre-tokenized for GPT-2 in llm.c's shard format (Hugging Face kjj0/fineweb10B-gpt2)"
# torch.compile's first step of GPT-2 124M on an A100: 'iter 0: ... time 9371.81ms' (otaviogood in karpathy/nanoGPT
# issue #178, 2023-02-24, https://github.com/karpathy/nanoGPT/issues/178). Scaled by layers: an assumption (compile
# time grows with the graph), and a once-per-run cost (a resumed run compiles again).
COMPILE_FIRST_STEP_S = 9.37
COMPILE_LAYERS = 12
# A checkpoint holds fp32 weights and AdamW's two fp32 moments: 12 bytes per parameter (gradients are not saved).
CHECKPOINT_BYTES_PER_PARAM = 12
# Assumed: a local NVMe SSD's sustained write, about 1 GB/s; a network disk is slower. Not measured.
CHECKPOINT_WRITE_GBS = 1.0
DATA_CHOICES = ("tokenize", "shards")


@dataclass(frozen=True)
class Setup:
    """Seconds of set-up for one run, by part, with the basis of each."""

    compile_s: float
    compile_basis: str
    prepare_tokens: float  # tokens to tokenize before training (0: shards already made)
    checkpoints: int
    checkpoint_gb: float
    checkpoint_s: float
    vcpus: int | None = None  # the machine's CPUs, when known: prepare's workers are billed from them

    @property
    def prepare_workers(self) -> int:
        """prepare's default on this machine: one worker per vCPU less one; one where the vCPUs are not known."""
        return max(1, self.vcpus - 1) if self.vcpus else 1

    @property
    def prepare_s(self) -> float:
        return self.prepare_tokens / (PREPARE_TOKENS_PER_SEC * self.prepare_workers)

    @property
    def hours(self) -> float:
        return (self.compile_s + self.prepare_s + self.checkpoint_s) / 3600

    def to_dict(self) -> dict[str, float | int | str | None]:
        """The parts as JSON-ready data."""
        return {
            "compile_s": self.compile_s,
            "compile_basis": self.compile_basis,
            "prepare_s": self.prepare_s,
            "prepare_tokens": self.prepare_tokens,
            "prepare_workers": self.prepare_workers,
            "vcpus": self.vcpus,
            "checkpoints": self.checkpoints,
            "checkpoint_gb": self.checkpoint_gb,
            "checkpoint_s": self.checkpoint_s,
            "hours": self.hours,
        }


def setup_for(
    n_params: int,
    n_layer: int,
    tokens: float,
    tokens_per_step: int,
    checkpoint_every: int | None,
    data: str,
    warmup_s: float | None = None,
    vcpus: int | None = None,
) -> Setup:
    """Set-up of one run: `warmup_s` when a report measured it, else the cited compile time scaled by layers; the
    tokenizer at prepare's measured rate per worker on `vcpus` CPUs unless `data` is shards; a checkpoint every
    `checkpoint_every` steps."""
    if data not in DATA_CHOICES:
        raise GptbenchError(f"--data {data}: choose tokenize (bill tokenizing the corpus) or shards (already tokenized)")
    if warmup_s is not None:
        compile_s, basis = warmup_s, "measured warm-up of the report's run"
    else:
        compile_s, basis = COMPILE_FIRST_STEP_S * n_layer / COMPILE_LAYERS, "cited compile time scaled by layers"
    prepare_tokens = tokens if data == "tokenize" else 0.0
    steps = math.ceil(tokens / tokens_per_step)
    count = steps // checkpoint_every if checkpoint_every else 0
    size_gb = n_params * CHECKPOINT_BYTES_PER_PARAM / 1e9
    return Setup(compile_s, basis, prepare_tokens, count, size_gb, count * size_gb / CHECKPOINT_WRITE_GBS, vcpus)


def setup_lines(s: Setup, data: str, checkpoint_every: int | None) -> list[str]:
    """The assumptions behind the set-up column, one line each."""
    lines = [
        f"compile warm-up: {COMPILE_FIRST_STEP_S} s for 12 layers (nanoGPT #178, A100, 2023-02-24), scaled by layers: "
        f"{s.compile_s:,.0f} s here; a report's own measured warm-up for your machines",
        f"data: tokenizing the corpus at {PREPARE_SOURCE}, per worker, on prepare's default of one worker per vCPU"
        " less one (the catalog's vCPU count; one worker where it lists none): linear scaling across workers is"
        f" assumed, not measured; {s.prepare_s / 3600:,.2f} h on one worker. {PRESHARDED}: with those, --data shards"
        " bills nothing"
        if data == "tokenize"
        else "data: pre-tokenized shards, read while training (nothing billed)",
    ]
    if checkpoint_every:
        lines.append(
            f"checkpoints: {s.checkpoints} of {s.checkpoint_gb:,.1f} GB (fp32 weights + AdamW moments, 12 bytes/param) "
            f"every {checkpoint_every:,} steps, written at {CHECKPOINT_WRITE_GBS:g} GB/s (assumed: local NVMe)"
        )
    else:
        lines.append("checkpoints: none (--checkpoint-every 0)")
    return lines
