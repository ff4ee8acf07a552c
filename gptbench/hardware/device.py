"""Devices: resolving `--device`, synchronising, and what the CPU offers (its flags, fast bf16)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import torch

from gptbench.errors import GptbenchError
from gptbench.hardware.capability import native_bf16


def resolve_device(name: str) -> torch.device:
    """`auto|cpu|cuda|cuda:N|mps` -> a usable torch.device, or an error saying what was found instead."""
    key = name.strip().lower()
    if key == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if key == "cpu":
        return torch.device("cpu")
    if key == "mps":
        if not _mps_available():
            found = f"{sys.platform}, torch {torch.__version__}"
            raise GptbenchError(f"--device mps: MPS is not available on this machine ({found}); use --device cpu")
        return torch.device("mps")
    if key == "cuda" or key.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise GptbenchError(f"--device {name}: CUDA is not available ({why_no_cuda()}); use --device cpu or auto")
        index = 0
        if ":" in key:
            suffix = key.split(":", 1)[1]
            if not suffix.isdigit():
                raise GptbenchError(f"--device {name}: expected cuda:N with N a GPU index")
            index = int(suffix)
        count = torch.cuda.device_count()
        if index >= count:
            raise GptbenchError(f"--device {name}: this machine has {count} CUDA device(s), indices 0..{count - 1}")
        return torch.device("cuda", index)
    raise GptbenchError(f"--device {name}: unknown device; choose auto, cpu, cuda, cuda:N or mps")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def why_no_cuda() -> str:
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build; install a CUDA build of torch"
    return f"torch {torch.__version__} was built for CUDA {torch.version.cuda}, but no GPU or driver was found"


def synchronize(device: torch.device) -> None:
    """Wait until all queued work on `device` has finished, so wall-clock time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The x86 feature flags of this CPU (empty elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def has_fast_bf16(device: torch.device) -> bool:
    """Whether bf16 matmuls run faster than fp32: tensor cores on CUDA (sm80+); AVX512-BF16 or AMX on x86 CPUs
    (measured here with `gptbench peak`: an AVX512-BF16 EPYC does 2048^3 bf16 matmuls ~8x faster than fp32)."""
    if device.type == "cuda":
        return native_bf16(device)
    if device.type == "cpu":
        return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())
    return False
