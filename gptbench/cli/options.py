"""Options shared by the commands that train (run, sweep, ablate, suite): one definition each."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from gptbench.cli import checks
from gptbench.errors import GptbenchError
from gptbench.reports.text import GB

if TYPE_CHECKING:  # types only: the command module is imported without torch
    from gptbench.bench.config import RunOptions
    from gptbench.studies.sweep import Axis

Device = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")]
Model = Annotated[
    str, typer.Option(help="Preset: tiny, 124m, 355m, 774m, 1558m, or the book's GPTModel: book-124m … book-1558m.")
]
NLayer = Annotated[Optional[int], typer.Option(help="Override the preset's layers.", callback=checks.whole(1, checks.SHAPE_MAX))]
NHead = Annotated[
    Optional[int], typer.Option(help="Override the preset's attention heads.", callback=checks.whole(1, checks.SHAPE_MAX))
]
NEmbd = Annotated[
    Optional[int], typer.Option(help="Override the preset's embedding width.", callback=checks.whole(1, checks.WIDTH_MAX))
]
Seq = Annotated[
    Optional[int],
    typer.Option(help="Sequence length (default: the model's block size).", callback=checks.whole(1, checks.SEQ_MAX)),
]
GradAccum = Annotated[int, typer.Option(help="Micro-batches per optimizer step.", callback=checks.whole(1, checks.BATCH_MAX))]
Dtype = Annotated[
    str, typer.Option(help="auto, bf16, fp16 or fp32 (autocast) (auto: bf16 where fast, else fp16 on CUDA, fp32 elsewhere).")
]
Compile = Annotated[
    Optional[bool], typer.Option("--compile/--no-compile", help="torch.compile the model (default: on for CUDA).")
]
Attention = Annotated[str, typer.Option(help="sdpa (fused/flash) or naive (explicit mask + softmax).")]
AdamW = Annotated[str, typer.Option(help="auto, fused, foreach or for-loop.")]
Tf32 = Annotated[Optional[bool], typer.Option("--tf32/--no-tf32", help="TF32 fp32 matmuls (default: on for CUDA).")]
VocabPad = Annotated[
    Optional[bool],
    typer.Option("--vocab-pad/--no-vocab-pad", help="Pad the vocabulary 50257 → 50304 (default: on; off for book-*)."),
]
Data = Annotated[str, typer.Option(help="synthetic, a text file, or token shards (a .bin or a folder).")]
Steps = Annotated[
    Optional[int],
    typer.Option(help="Measured steps (default: 30 on CUDA, 10 on MPS, 8 on CPU).", callback=checks.whole(1, checks.STEPS_MAX)),
]
Warmup = Annotated[
    Optional[int],
    typer.Option(help="Warm-up steps, timed apart (default: 3 CUDA, 2 MPS, 1 CPU).", callback=checks.whole(0, checks.STEPS_MAX)),
]
Lr = Annotated[float, typer.Option(help="AdamW learning rate.", callback=checks.POSITIVE)]
Seed = Annotated[int, typer.Option(help="Seed for weights and data.", callback=checks.SEED)]
Label = Annotated[Optional[str], typer.Option(help="A name kept in the report and its file name.")]
OutDir = Annotated[Path, typer.Option("--out", help="Folder for the report.")]
# --json everywhere: stdout holds the JSON alone (the report as written to disk), progress stays on stderr.
ReportJson = Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of the summary.")]
TableJson = Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of the table.")]


def _memory_limit(value: str | None) -> str | None:
    """`--memory-limit` parsed as it is read, so a typo is refused whichever other options are given (its bound
    against this machine's memory is checked once the device is known: `memory_limit_gb`)."""
    if value is not None:
        parse_size_gb(value)
    return value


MemoryLimit = Annotated[
    Optional[str],
    typer.Option(help="Memory a run may use, e.g. 2GB (default: the GPU's memory, else available RAM).", callback=_memory_limit),
]
Headroom = Annotated[
    float,
    typer.Option(
        help="Fraction of the memory bound kept free when searching the batch.",
        callback=checks.number(0.0, 1.0, low_open=False, high_open=True),
    ),
]
MaxBatch = Annotated[
    int, typer.Option(help="Largest micro-batch the batch search tries.", callback=checks.whole(1, checks.BATCH_MAX))
]
PROBE_STEP_LIMIT_S = 10.0  # the library's default too (studies.autobatch.DEFAULT_STEP_LIMIT_S), kept here torch-free
ProbeStepLimit = Annotated[
    float,
    typer.Option(
        "--probe-step-limit-s",
        help="CPU batch search: stop growing the batch once a probe's step takes longer than this many seconds.",
        callback=checks.SECONDS,
    ),
]
Allocator = Annotated[
    str,
    typer.Option(
        help="Host malloc: auto (tcmalloc for CPU runs where installed, else the system's), system, tcmalloc or jemalloc."
    ),
]
Threads = Annotated[
    Optional[int],
    typer.Option(
        help="torch intra-op threads (default on CPU: the physical cores this process may use).",
        callback=checks.whole(1, checks.CPUS_MAX),
    ),
]
ActivationCheckpointing = Annotated[
    bool,
    typer.Option(
        "--activation-checkpointing",
        help="Recompute each transformer block in backward (torch.utils.checkpoint): less activation memory, more FLOPs.",
    ),
]
Loss = Annotated[
    str,
    typer.Option(
        help="LM head + cross-entropy: standard (the full logits), chunked (gptbench's, a chunk of logits at a time), "
        "liger or cce (a library's fused kernel; CUDA)."
    ),
]
CompileMode = Annotated[
    str,
    typer.Option(
        help="torch.compile's mode: default, max-autotune-no-cudagraphs, reduce-overhead or max-autotune (both: CUDA graphs)."
    ),
]
Fp8 = Annotated[
    bool,
    typer.Option(
        "--fp8", help="The blocks' linear layers in FP8 (torchao float8 training; CUDA sm89+; pip install 'gptbench[fp8]')."
    ),
]

ModelFactory = Annotated[
    Optional[str],
    typer.Option(help="Your own model: FILE.py:FUNCTION or package.module:FUNCTION returning an nn.Module (replaces --model)."),
]
ModelArg = Annotated[Optional[list[str]], typer.Option(help="key=value passed to the --model-factory function (repeatable).")]
Vocab = Annotated[
    Optional[int],
    typer.Option(
        help="A --model-factory model's vocabulary, where the module exposes none.", callback=checks.whole(1, checks.VOCAB_MAX)
    ),
]
# Given without --model-factory, these would be ignored: refused instead (checks.only_with).
FACTORY_ONLY = ("model_arg", "vocab")
# Given without a batch search, these would be ignored: refused instead.
SEARCH_ONLY = ("memory_limit", "headroom", "max_batch", "probe_step_limit_s")

# CLI name -> RunOptions field, where they differ.
_FIELDS = {"seq": "seq_len", "batch": "micro_batch", "warmup": "warmup_steps", "model_arg": "model_args"}


def run_options(**given: Any) -> RunOptions:  # Any: each option's own type, as typer parsed it (RunOptions checks them)
    """RunOptions from the CLI's keyword arguments (`dtype auto` and `adamw auto` mean the device's default)."""
    from gptbench.bench.config import RunOptions

    fields = {_FIELDS.get(k, k): v for k, v in given.items()}
    if fields.get("dtype") == "auto":
        fields["dtype"] = None
    fields["model_args"] = tuple(fields.get("model_args") or ())
    return RunOptions(**fields)


def memory_limit_gb(text: str | None, device: str) -> float | None:
    """`--memory-limit 2GB` -> 2.0, or None when not given; a limit above the memory `device` has (a GPU's own, else
    this machine's RAM) is refused: the batch search would trust a bound no probe can reach."""
    if text is None:
        return None
    from gptbench.hardware.machine import memory_capacity_gb

    limit = parse_size_gb(text)
    capacity, what = memory_capacity_gb(device)
    if capacity is not None and limit > capacity:
        raise GptbenchError(
            f"--memory-limit {text}: more than the {capacity:,.1f} GB of {what}; give {capacity:,.1f}GB or less "
            "(or leave it out: the search then uses what is available)"
        )
    return limit


def parse_list(flag: str, text: str | None, kind: type, high: int = checks.BATCH_MAX) -> list[Axis] | None:
    """`4,8,16` -> [4, 8, 16]; `on,off` -> [True, False] for booleans; None stays None (the axis is not swept)."""
    if text is None:
        return None
    values: list[Axis] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise GptbenchError(f"--{flag} {text!r}: an empty item; give a comma-separated list such as 4,8,16")
        if kind is bool:
            if item.lower() not in ("on", "off", "true", "false"):
                raise GptbenchError(f"--{flag} {text!r}: use on or off")
            values.append(item.lower() in ("on", "true"))
        elif kind is int:
            if not _whole_in(item, 1, high):
                raise GptbenchError(f"--{flag} {text!r}: {item!r} is not a whole number from 1 to {high:,}")
            values.append(int(item))
        else:
            values.append(item.lower())
    return list(dict.fromkeys(values))  # drop repeats, keep order


def parse_batch(text: str | None) -> int | None:
    """`--batch 16` -> 16; anything but a positive whole number or `auto` is refused."""
    if text is None:
        return None
    if not _whole_in(text.strip(), 1, checks.BATCH_MAX):
        raise GptbenchError(f"--batch {text}: give a whole number from 1 to {checks.BATCH_MAX:,}, or auto")
    return int(text)


def _whole_in(text: str, low: int, high: int) -> bool:
    """Whether `text` is ASCII digits (str.isdigit also takes '²', which int() refuses) for a number in [low, high]."""
    return re.fullmatch(r"[0-9]+", text) is not None and low <= int(text) <= high


_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(?:([kmgt])(i?)b?)?\s*$", re.IGNORECASE)


def parse_size_gb(text: str) -> float:
    """`2GB`, `1.5G`, `512MB`, `16GiB`, or a bare number of GB -> gigabytes (1e9 bytes)."""
    match = _SIZE.match(text)
    if not match:
        raise GptbenchError(f"--memory-limit {text!r}: expected a size such as 2GB, 512MB or 16GiB")
    number, unit, binary = float(match.group(1)), (match.group(2) or "g").lower(), bool(match.group(3))
    power = "kmgt".index(unit) + 1
    gb = number * (1024**power if binary else 1000**power) / GB
    if gb <= 0:
        raise GptbenchError(f"--memory-limit {text!r} must be more than zero")
    return gb
