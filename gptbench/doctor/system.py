"""`gptbench doctor`'s probes of this machine: versions, devices, kernels, compile, CPU, allocator, and a training
step; `diagnose` runs them all. The NVML and GPU-link checks live in doctor/nvml.py, the check type in
doctor/checks.py."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterator
from functools import partial

import torch

import gptbench
from gptbench.doctor.checks import INFO, OK, WARN, Check, Diagnosis, guarded
from gptbench.doctor.quiet import captured
from gptbench.errors import GptbenchError
from gptbench.hardware import capability as support


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def versions() -> list[Check]:
    """Python, gptbench, torch and what it was built with, Triton."""
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    triton = _version("triton")
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only build"
    checks = [
        Check("versions", "python", OK, platform.python_version()),
        Check("versions", "os", OK, platform.platform()),
        Check("versions", "gptbench", OK, gptbench.__version__),
        Check("versions", "torch", OK, f"{torch.__version__} ({build})"),
        Check("versions", "cuDNN", OK if cudnn else INFO, str(cudnn) if cudnn else "none (a CPU-only torch, or not found)"),
    ]
    needs_triton = torch.cuda.is_available()
    checks.append(
        Check(
            "versions",
            "triton",
            OK if triton else (WARN if needs_triton else INFO),
            triton or "not installed",
            "torch.compile on CUDA needs Triton: runs fall back to eager (often 1.3x slower); pip install triton"
            if needs_triton and not triton
            else None,
        )
    )
    return checks


def devices() -> list[torch.device]:
    """Every device gptbench could measure here: each CUDA GPU, MPS, and the CPU."""
    found = [torch.device("cuda", i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append(torch.device("mps"))
    return [*found, torch.device("cpu")]


def cuda_device(device: torch.device) -> list[Check]:
    """Name, memory, the spec-table row MFU will use (or why none), and native bf16."""
    from gptbench.hardware.specs import match_device

    area = str(device)
    props = torch.cuda.get_device_properties(device)
    checks = [Check(area, "GPU", OK, f"{props.name} · sm{props.major}{props.minor} · {props.total_memory / 1e9:.1f} GB")]
    slice_ = support.mig_slice(props.name)
    spec = None if slice_ else match_device(props.name)
    if slice_:
        checks.append(Check(area, "MFU peak", WARN, f"MIG slice {slice_}", "MFU is n/a: the datasheet peak is the whole GPU's"))
    elif spec is None:
        checks.append(
            Check(
                area, "MFU peak", WARN, "not in the spec table", "no MFU for runs here: add a row to gptbench/hardware/gpus.csv"
            )
        )
    else:
        peak = spec.bf16_tflops or spec.fp16_tflops
        checks.append(Check(area, "MFU peak", OK, f"{spec.name}: {peak:g} TFLOP/s dense bf16/fp16 ({spec.source_date})"))
    if support.native_bf16(device):
        checks.append(Check(area, "bf16", OK, "native (bf16 tensor cores, sm80+)"))
    else:
        checks.append(Check(area, "bf16", WARN, "emulated", "bf16 runs slower than fp16 here: the default is fp16"))
    return checks


SDPA_BACKENDS = ("FLASH_ATTENTION", "CUDNN_ATTENTION", "EFFICIENT_ATTENTION", "MATH")


def sdpa_backends(device: torch.device) -> Check:
    """Which fused attention kernels run GPT-2's heads (12 x 64, causal) forward and backward on `device`."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    dtype = torch.bfloat16 if support.native_bf16(device) else torch.float16 if device.type == "cuda" else torch.float32
    works, results = [], []
    for name in SDPA_BACKENDS:
        backend = getattr(SDPBackend, name, None)
        if backend is None:
            results.append(f"{name.lower()} (not in torch {torch.__version__})")
            continue
        try:
            q = torch.randn(2, 12, 128, 64, device=device, dtype=dtype, requires_grad=True)
            with sdpa_kernel(backend):
                torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True).sum().backward()
            works.append(name.lower())
        except Exception:  # noqa: BLE001 - "no viable backend" is the answer being asked for
            results.append(name.lower())
    fast = {"flash_attention", "cudnn_attention"} & set(works) if device.type == "cuda" else set(works)
    value = ", ".join(works) or "none"
    if len(works) < len(SDPA_BACKENDS):
        value += f" (not here: {', '.join(n for n in results)})"
    advice = (
        None if fast else "no flash or cuDNN attention: SDPA falls back to slower kernels; check the GPU (sm80+) and torch build"
    )
    return Check(str(device), "SDPA kernels", OK if fast else WARN, value, advice)


def compile_check(device: torch.device) -> Check:
    """Compile and run a small function on `device`, timed."""
    start = time.perf_counter()
    with captured() as said:  # torch's own lines ("No CUDA runtime is found, using CUDA_HOME=…") belong here
        problem = support.compile_probe(device)
    took = time.perf_counter() - start
    torch_said = f"; torch said: {said.text()}" if said.lines else ""
    if problem is None:
        return Check(str(device), "torch.compile", OK, f"works ({took:.1f} s for a small function){torch_said}")
    cost = "compiled runs are not possible here; gptbench runs eager (on GPUs often 1.3x slower)"
    return Check(str(device), "torch.compile", WARN if device.type != "cpu" else INFO, problem + torch_said, cost)


def fused_adamw(device: torch.device) -> Check:
    """Whether a fused AdamW step runs on the device (doctor may touch the GPU: it launches nothing)."""
    problem = support.fused_adamw_problem(device)
    if problem is not None:
        return Check(str(device), "fused AdamW", INFO, f"not available: {problem}", "gptbench uses foreach")
    return Check(str(device), "fused AdamW", OK, "available")


def mps_device(device: torch.device) -> list[Check]:
    """What autocast really does on MPS."""
    checks = [Check("mps", "device", OK, f"Apple {platform.machine()} GPU (MPS), torch {torch.__version__}")]
    for dtype in ("bf16", "fp16"):
        problem = support.autocast_problem(device, dtype)
        checks.append(
            Check(
                "mps",
                f"{dtype} autocast",
                OK if problem is None else WARN,
                problem or "works",
                "--dtype fp32" if problem else None,
            )
        )
    return checks


def cpu() -> list[Check]:
    """Model, cores, the threads torch will use, fast bf16, and whether the machine is busy right now."""
    from gptbench.bench.contention import load_before
    from gptbench.hardware.device import has_fast_bf16
    from gptbench.hardware.machine import cpu_model
    from gptbench.hardware.threads import default_threads, physical_cores, usable_cpus

    affinity = usable_cpus()
    physical = physical_cores(affinity)
    threads = torch.get_num_threads()
    checks = [
        Check(
            "host",
            "CPU",
            OK,
            f"{cpu_model()} · {os.cpu_count()} logical CPUs, {len(affinity)} usable, {physical or '?'} physical cores",
        ),
        Check(
            "host",
            "torch threads",
            OK,
            f"{threads} intra-op threads in this process ({torch.backends.cpu.get_cpu_capability()} kernels); "
            f"CPU runs use {default_threads()}, one per physical core (--threads to change)",
        ),
        Check(
            "host",
            "bf16 on the CPU",
            OK if has_fast_bf16(torch.device("cpu")) else INFO,
            "AVX512-BF16/AMX: bf16 is the CPU default"
            if has_fast_bf16(torch.device("cpu"))
            else "no AVX512-BF16 or AMX: CPU runs use fp32",
        ),
    ]
    load, runnable = load_before()
    if load is not None:
        busy = load > 0.5 * len(affinity)
        advice = "a benchmark now would measure the sharing: wait for the other jobs, or stop them" if busy else None
        checks.append(Check("host", "load", WARN if busy else OK, f"load average {load:.2f} on {len(affinity)} CPUs", advice))
    return checks


def allocator() -> Check:
    """The malloc in this process, and whether CPU runs get a faster one (gptbench/hardware/allocator.py decides)."""
    from gptbench.hardware.allocator import allocator_status

    status = allocator_status()
    value = "the system's (glibc malloc)" if status.in_use == "system" else f"{status.in_use} ({status.in_use_path})"
    if status.install_command:
        advice = f"CPU steps spend much of their time page-faulting under glibc malloc; {status.install_command}"
        return Check("host", "allocator", WARN, value, advice)
    return Check("host", "allocator", OK, f"{value}; {status.note}")


def smoke(device: torch.device) -> Check:
    """One forward and backward of the tiny preset: whether gptbench can measure anything on `device`."""
    from gptbench.model.config import GPTConfig
    from gptbench.model.gpt import GPT

    model = GPT(GPTConfig.from_name("tiny")).to(device)
    x = torch.randint(0, 100, (1, 16), device=device)
    model(x, x).backward()
    return Check(str(device), "training step", OK, "a tiny GPT-2 trains here")


DEVICE_KINDS = ("all", "cuda", "mps", "cpu")


def diagnose(on_check: Callable[[Check], None] | None = None, kind: str = "all") -> Diagnosis:
    """Every check, in display order; `on_check` sees each as it is made. `kind` limits the per-device checks
    (training step, kernels, compile) to CUDA, MPS or the CPU: a GPU machine's CPU compile check alone took 60 s of
    doctor's 77 s on the H200 (2026-12-04), for a device the user did not ask about."""
    if kind not in DEVICE_KINDS:
        raise GptbenchError(f"--device {kind}: choose one of {', '.join(DEVICE_KINDS)}")
    if kind != "all" and not any(d.type == kind for d in devices()):
        found = ", ".join(str(d) for d in devices())
        raise GptbenchError(f"--device {kind}: no {kind.upper()} device here (found: {found}); use --device all")
    from gptbench.doctor.nvml import nvml_checks

    start = time.perf_counter()
    diagnosis = Diagnosis()

    def add(checks: list[Check]) -> None:
        diagnosis.checks.extend(checks)
        for c in checks:
            if on_check:
                on_check(c)

    for checks in _all_checks(nvml_checks, kind):
        add(checks)
    ran = [c for c in diagnosis.checks if c.name == "training step"]
    diagnosis.can_run = any(c.status == OK for c in ran)
    diagnosis.elapsed_s = round(time.perf_counter() - start, 1)
    return diagnosis


def _all_checks(nvml_checks: Callable[[list[torch.device]], list[Check]], kind: str = "all") -> Iterator[list[Check]]:
    yield guarded("versions", "versions", versions)
    found = devices()
    if found[0].type == "cpu" and kind in ("all", "cuda"):
        from gptbench.hardware.device import why_no_cuda

        yield [Check("cuda", "CUDA", INFO, f"no CUDA GPU ({why_no_cuda()}): runs use the CPU")]
    for device in (d for d in found if kind in ("all", d.type)):
        area = str(device)
        if device.type == "cuda":
            yield guarded(area, "GPU", partial(cuda_device, device))
        if device.type == "mps":
            yield guarded(area, "MPS", partial(mps_device, device))
        yield guarded(area, "training step", partial(smoke, device))
        yield guarded(area, "SDPA kernels", partial(sdpa_backends, device))
        yield guarded(area, "fused AdamW", partial(fused_adamw, device))
        yield guarded(area, "torch.compile", partial(compile_check, device))
    yield guarded("nvml", "NVML", lambda: nvml_checks([d for d in found if d.type == "cuda"]))
    yield guarded("host", "CPU", cpu)
    yield guarded("host", "allocator", allocator)
