"""What this torch, platform and device can actually do, decided without guessing: native bf16 by compute capability,
whether torch.compile can work here, what autocast really produces, MIG slices. Each answer that is "no" comes
with the reason, in words a user can act on. Nothing here allocates on a CUDA device (see `supports_fused_adamw`):
processes that launch others (sweep, ablate, suite, --nproc) call it and must not hold a CUDA context."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import torch

from gptbench.errors import first_line

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
AMPERE = (8, 0)  # sm80: bf16 and TF32 tensor cores (NVIDIA Ampere architecture whitepaper, 2020)
# sm89 (Ada) and sm90 (Hopper): FP8 tensor cores (NVIDIA Ada Lovelace and H100 architecture whitepapers, 2022);
# torchao's float8 training asks for the same (torchao/utils.py is_sm_at_least_89).
FP8_CAPABILITY = (8, 9)
FP8_INSTALL = "pip install 'gptbench[fp8]' (torchao, built for your torch: 0.17 for torch 2.11)"


def capability(device: torch.device) -> tuple[int, int]:
    """The CUDA compute capability of the run's device (not the current device)."""
    return torch.cuda.get_device_capability(device)


def native_bf16(device: torch.device) -> bool:
    """bf16 tensor cores on this CUDA device: compute capability 8.0 or newer. `torch.cuda.is_bf16_supported()` is
    no use here: it answers True where bf16 is only emulated (V100, T4) and asks the current device, not the run's."""
    return device.type == "cuda" and capability(device) >= AMPERE


def native_tf32(device: torch.device) -> bool:
    """TF32 tensor cores: Ampere (sm80) and newer."""
    return device.type == "cuda" and capability(device) >= AMPERE


def bf16_note(device: torch.device) -> str | None:
    """Why `--dtype bf16` on this CUDA device is slow (emulated), or None where it is native."""
    if device.type != "cuda" or native_bf16(device):
        return None
    major, minor = capability(device)
    name = torch.cuda.get_device_name(device)
    return (
        f"{name} (sm{major}{minor}) has no bf16 tensor cores: torch emulates bf16 there, slower than fp16; "
        "use --dtype fp16 (or auto) to measure what this GPU does"
    )


def supports_fused_adamw(device: torch.device) -> bool:
    """Whether torch's fused AdamW kernel runs on this device. On CUDA it is decided without touching the GPU:
    fused AdamW has had CUDA kernels since torch 2.0 (torch.optim.AdamW docs, `fused`), and torch ≥ 2.4 is
    required; the launching process of a series must not open a CUDA context. Elsewhere it is probed."""
    if device.type == "cuda":
        return True
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

        if device.type not in _get_fused_kernels_supported_devices():
            return False
    except ImportError:  # a private helper: if it moves, the probe below still decides
        pass
    return fused_adamw_problem(device) is None


def fused_adamw_problem(device: torch.device) -> str | None:
    """Run one fused AdamW step on `device`: None when it works, else why not. It allocates on the device."""
    try:
        p = torch.nn.Parameter(torch.zeros(2, device=device))
        p.grad = torch.zeros_like(p)
        torch.optim.AdamW([p], fused=True).step()
    except (RuntimeError, TypeError, NotImplementedError) as e:
        from gptbench.errors import innermost_message

        return innermost_message(e, 100)
    return None


def autocast_problem(device: torch.device, dtype: str) -> str | None:
    """None when autocast to `dtype` really runs matmuls in it on `device`; else what happens instead. Probed on a
    tiny matmul: before torch 2.5 `torch.autocast("mps")` raises, and in 2.5 bf16 autocast on MPS is disabled with
    only a warning, so the run would be fp32 while the report says bf16."""
    want = AUTOCAST_DTYPES.get(dtype)
    if want is None:
        return None
    return _autocast_problem(device.type, str(device), want)


@functools.lru_cache(maxsize=8)
def _autocast_problem(kind: str, device: str, want: torch.dtype) -> str | None:
    import warnings

    try:
        a = torch.ones(8, 8, device=device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch 2.5 on MPS warns and disables; the dtype below tells
            with torch.autocast(kind, dtype=want):
                got = (a @ a).dtype
    except Exception as e:  # noqa: BLE001 - any failure means autocast cannot be used here
        return f"torch {torch.__version__} cannot autocast to {want} on {kind.upper()}: {first_line(e)}"
    if got != want:
        return f"torch {torch.__version__} ignores {want} autocast on {kind.upper()}: matmuls ran in {got}"
    return None


def compile_problem(device: torch.device) -> str | None:
    """None when torch.compile's default path (Dynamo + Inductor) can work for `device`; else why not and how to
    fix it. Checked without compiling anything: Dynamo supports this Python and platform; on CUDA, Triton is
    installed; a C compiler exists (Inductor builds C++ on CPUs, and Triton builds its CUDA launcher with one);
    Python's headers exist (Triton's launcher includes Python.h). MPS is decided by `compile_probe`."""
    try:
        import torch._dynamo
    except Exception as e:  # noqa: BLE001 - a broken install is a reason, never a traceback
        return f"torch._dynamo does not import: {first_line(e)}"
    if not torch._dynamo.is_dynamo_supported():
        return f"torch {torch.__version__} has no Dynamo support for this Python/platform, so torch.compile cannot run"
    if device.type == "cuda" and not _has_triton():
        return "Triton is not installed, and torch.compile needs it for CUDA (pip install triton, or a torch wheel with it)"
    if device.type in ("cuda", "cpu") and not c_compiler():
        return "no C compiler found (gcc, clang or $CC); torch.compile builds kernels with one: apt-get install gcc"
    if device.type == "cuda" and not python_headers():
        return "Python's C headers (Python.h) are missing; Triton builds its launcher against them: apt-get install python3-dev"
    return None


def fp8_problem(device: torch.device) -> str | None:
    """None when torchao's float8 training can run on `device`; else why not, in words a user can act on.
    Decided from the capability and whether torchao is installed, without importing it or touching the GPU."""
    if device.type != "cuda":
        return (
            "FP8 training needs an NVIDIA GPU with FP8 tensor cores (compute capability 8.9 or newer: Ada, Hopper, "
            f"Blackwell); this run is on {device.type.upper()}"
        )
    major, minor = capability(device)
    if (major, minor) < FP8_CAPABILITY:
        name = torch.cuda.get_device_name(device)
        return f"{name} (sm{major}{minor}) has no FP8 tensor cores: they need compute capability 8.9 or newer (Ada, Hopper)"
    if not _installed("torchao"):
        return f"torchao is not installed: {FP8_INSTALL}"
    return None


def loss_problem(loss: str, device: torch.device) -> str | None:
    """None when the loss `loss` can run on `device`: gptbench's own (standard, chunked) everywhere; a library's fused
    kernel (liger, cce: Triton) only on CUDA and where the library is installed."""
    from gptbench.model.loss import LIBRARY_LOSSES

    module = LIBRARY_LOSSES.get(loss)
    if module is None:
        return None
    package = module.replace("_", "-")
    if device.type != "cuda":
        return f"{package}'s kernels are written in Triton for CUDA GPUs; this run is on {device.type.upper()}"
    if not _installed(module):
        return f"{package} is not installed: pip install {package} (or use --loss chunked, gptbench's own)"
    return None


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _has_triton() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def c_compiler() -> str | None:
    """The C compiler torch.compile would find: $CC/$CXX, else gcc, clang or cc on PATH."""
    for name in (os.environ.get("CC"), os.environ.get("CXX"), "gcc", "clang", "cc", "g++", "clang++"):
        if name and (found := shutil.which(name)):
            return found
    return None


def python_headers() -> str | None:
    """The path of Python.h for this interpreter, where installed."""
    header = Path(sysconfig.get_paths().get("include", "")) / "Python.h"
    return str(header) if header.is_file() else None


def compile_probe(device: torch.device) -> str | None:
    """Compile and run a tiny function on `device`: None when it works, else the failure (MPS and `doctor`)."""
    problem = compile_problem(device)
    if problem is not None:
        return problem
    try:
        fn = torch.compile(lambda x: torch.nn.functional.gelu(x) * 2 + 1)
        x = torch.randn(64, device=device)
        torch.testing.assert_close(fn(x), torch.nn.functional.gelu(x) * 2 + 1)
    except Exception as e:  # noqa: BLE001 - inductor raises many kinds; the cause is what matters
        from gptbench.errors import innermost_message

        return f"torch.compile failed on {device.type.upper()}: {innermost_message(e)}"
    return None


_MIG = re.compile(r"\bMIG\s+(\d+)g\.(\d+)gb", re.IGNORECASE)


def mig_slice(device_name: str) -> str | None:
    """`1g.10gb` for a MIG slice name such as "NVIDIA A100-SXM4-80GB MIG 1g.10gb", else None."""
    match = _MIG.search(device_name)
    if match:
        return f"{match.group(1)}g.{match.group(2)}gb"
    return "MIG" if re.search(r"\bMIG\b", device_name) else None


@contextlib.contextmanager
def matmul_precision(tf32: bool) -> Iterator[None]:
    """Allow TF32 for fp32 matmuls and convolutions for the duration, then restore the previous setting."""
    before = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    torch.backends.cudnn.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before[0])
        torch.backends.cudnn.allow_tf32 = before[1]
