"""Options shared by the commands that train (run, sweep, ablate, suite): one definition each."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

Device = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")]
Model = Annotated[
    str, typer.Option(help="Preset: tiny, 124m, 355m, 774m, 1558m, or the book's GPTModel: book-124m … book-1558m.")
]
NLayer = Annotated[Optional[int], typer.Option(help="Override the preset's layers.")]
NHead = Annotated[Optional[int], typer.Option(help="Override the preset's attention heads.")]
NEmbd = Annotated[Optional[int], typer.Option(help="Override the preset's embedding width.")]
Seq = Annotated[Optional[int], typer.Option(help="Sequence length (default: the model's block size).")]
GradAccum = Annotated[int, typer.Option(help="Micro-batches per optimizer step.")]
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
Steps = Annotated[Optional[int], typer.Option(help="Measured steps (default: 30 on CUDA, 10 on MPS, 8 on CPU).")]
Warmup = Annotated[Optional[int], typer.Option(help="Warm-up steps, timed apart (default: 3 CUDA, 2 MPS, 1 CPU).")]
Lr = Annotated[float, typer.Option(help="AdamW learning rate.")]
Seed = Annotated[int, typer.Option(help="Seed for weights and data.")]
Label = Annotated[Optional[str], typer.Option(help="A name kept in the report and its file name.")]
OutDir = Annotated[Path, typer.Option("--out", help="Folder for the report.")]
MemoryLimit = Annotated[
    Optional[str], typer.Option(help="Memory a run may use, e.g. 2GB (default: the GPU's memory, else available RAM).")
]
Headroom = Annotated[float, typer.Option(help="Fraction of the memory bound kept free when searching the batch.")]
MaxBatch = Annotated[int, typer.Option(help="Largest micro-batch the batch search tries.")]
Allocator = Annotated[
    str,
    typer.Option(
        help="Host malloc: auto (tcmalloc for CPU runs where installed, else the system's), system, tcmalloc or jemalloc."
    ),
]
Threads = Annotated[
    Optional[int], typer.Option(help="torch intra-op threads (default on CPU: the physical cores this process may use).")
]

ModelFactory = Annotated[
    Optional[str],
    typer.Option(help="Your own model: FILE.py:FUNCTION or package.module:FUNCTION returning an nn.Module (replaces --model)."),
]
ModelArg = Annotated[Optional[list[str]], typer.Option(help="key=value passed to the --model-factory function (repeatable).")]
Vocab = Annotated[Optional[int], typer.Option(help="A --model-factory model's vocabulary, where the module exposes none.")]

# CLI name -> RunOptions field, where they differ.
_FIELDS = {"seq": "seq_len", "batch": "micro_batch", "warmup": "warmup_steps", "model_arg": "model_args"}


def run_options(**given: Any) -> Any:
    """RunOptions from the CLI's keyword arguments (`dtype auto` and `adamw auto` mean the device's default)."""
    from gptbench.bench.config import RunOptions

    fields = {_FIELDS.get(k, k): v for k, v in given.items()}
    if fields.get("dtype") == "auto":
        fields["dtype"] = None
    fields["model_args"] = tuple(fields.get("model_args") or ())
    return RunOptions(**fields)


def memory_limit_gb(text: str | None) -> float | None:
    """`--memory-limit 2GB` -> 2.0, or None when not given."""
    if text is None:
        return None
    from gptbench.bench.autobatch import parse_size_gb

    return parse_size_gb(text)
