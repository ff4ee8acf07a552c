"""The default micro-batch on a CUDA GPU, sized by its memory: the largest power of two up to MAX_DEFAULT_BATCH whose
memory the memory model (predict/workload.py) puts within the GPU's memory less the headroom `run --batch auto`
keeps. One fixed default either wasted a large card (16 on an 80 GB H100, where llm.c trains 124M at 64) or ran out
of memory on a small one. CPU and MPS keep their fixed defaults; a --model-factory module, whose shape the memory
model does not know, keeps 16.
"""

from __future__ import annotations

import torch

from gptbench.model.config import GPTConfig
from gptbench.predict.workload import memory_estimate_gb, workload_of

# llm.c's micro-batch for GPT-2 124M at seq 1024 (karpathy/llm.c scripts/run_gpt2_124M.sh: `-b 64 -t 1024` on 8x A100
# 80GB, 2024-05; its README trains the same at 64 on 40 GB cards). On one H200 gptbench measured 535,940 tok/s at 64
# against 477,672 at 16 (reports/reference, 2026-12-04); above 64 nothing has been measured.
MAX_DEFAULT_BATCH = 64
HEADROOM = 0.1  # `run --batch auto`'s default headroom: a fraction kept free for fragmentation and other processes
GB = 1e9  # the memory model's unit


def memory_sized_batch(
    model: GPTConfig, seq_len: int, dtype: str, compile: bool, attention: str, adamw: str, checkpointing: bool, total_gb: float
) -> tuple[int, str]:
    """The largest power-of-two micro-batch up to MAX_DEFAULT_BATCH that the memory model fits in `total_gb` less
    HEADROOM (1 when none does), and the reason in a line. Sharding is left out: the ranks are not known yet, and
    without it the estimate is the larger one."""
    budget = total_gb * (1 - HEADROOM)
    step = dict(seq_len=seq_len, dtype=dtype, compile=compile, attention=attention, adamw=adamw)
    shape = dict(tied_head=model.tie_head, dropout=model.dropout > 0, activation_checkpointing=checkpointing)
    batch = MAX_DEFAULT_BATCH
    while True:
        need = memory_estimate_gb(workload_of(model, micro_batch=batch, **step, **shape))
        if need <= budget or batch == 1:
            break
        batch //= 2
    where = f"this GPU's {total_gb:.0f} GB less {HEADROOM:.0%} headroom"
    if need > budget:
        return 1, f"micro-batch 1: the memory model puts even that at {need:.1f} GB, over {where}; it may run out of memory"
    return batch, (
        f"micro-batch {batch} (the default here, --batch N to choose): the largest power of two up to {MAX_DEFAULT_BATCH} "
        f"that the memory model fits in {where} ({need:.1f} GB estimated)"
    )


def device_memory_gb(device: torch.device) -> float:
    """The GPU's total memory in GB (1e9 bytes), as torch reports it; no CUDA context is created."""
    return torch.cuda.get_device_properties(device).total_memory / GB
