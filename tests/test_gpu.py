"""CUDA-only checks; they skip cleanly on a machine without a GPU (see conftest.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from gptbench.bench.config import RunOptions, resolve_config
from gptbench.bench.runner import new_report, run_benchmark
from gptbench.hardware.capability import compile_problem
from gptbench.hardware.nvml import nvml_handle, pci_mismatch
from gptbench.hardware.peak import measure_matmul
from gptbench.hardware.specs import match_device

pytestmark = pytest.mark.gpu


def test_cuda_defaults_are_the_fast_path() -> None:
    config = resolve_config(RunOptions(device="cuda", model="tiny"))
    ampere = torch.cuda.get_device_capability() >= (8, 0)
    # The acceptance GPU has Triton, a C compiler and Python's headers: compile must be on there, and the message says
    # which prerequisite is missing where it is not (the old check restated config.py and passed with compile off).
    assert config.compile, f"compile is off on this GPU: {compile_problem(config.torch_device)}"
    assert config.adamw == "fused"
    assert config.dtype == ("bf16" if ampere else "fp16") and config.tf32 == ampere


def test_a_launching_process_holds_no_cuda_context() -> None:
    """What sweep, ablate, suite and --nproc do before their children run: resolve, fingerprint, bound the batch."""
    code = (
        "import torch; from gptbench.bench.config import RunOptions, resolve_config;"
        "from gptbench.bench.runner import new_report; from gptbench.studies.autobatch import memory_bound_gb;"
        "c = resolve_config(RunOptions(device='cuda')); new_report(c.torch_device); memory_bound_gb(c.device, None, 0.1);"
        "print(any(torch._C._cuda_hasPrimaryContext(i) for i in range(torch.cuda.device_count())))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert proc.stdout.strip() == "False", proc.stderr


def test_nvml_handle_names_the_cuda_devices_pci_address() -> None:
    """For every visible CUDA device: NVML's device (found by UUID, else PCI bus id) sits at that device's PCI address,
    a fact independent of the key the lookup used (comparing the UUID it was found by proved nothing)."""
    import pynvml

    for i in range(torch.cuda.device_count()):
        device = torch.device("cuda", i)
        handle = nvml_handle(device)
        assert handle is not None, f"no NVML handle for {device}"
        problem = pci_mismatch(pynvml.nvmlDeviceGetPciInfo(handle).busId, torch.cuda.get_device_properties(device))
        assert problem is None, f"{device}: {problem}"


def test_peak_on_the_last_gpu_is_timed_on_that_gpu() -> None:
    device = torch.device("cuda", torch.cuda.device_count() - 1)
    result = measure_matmul(
        device, "bf16" if torch.cuda.get_device_capability(device) >= (8, 0) else "fp16", (4096, 4096, 4096), 0.3
    )
    spec = match_device(torch.cuda.get_device_name(device))
    if spec is not None:
        assert result.tflops < 1.2 * (spec.bf16_tflops or spec.fp16_tflops)  # an event on another GPU times nothing


@pytest.mark.parametrize("compile", [False, True])
def test_tiny_cuda_run_reports_memory_and_mfu(compile: bool) -> None:
    run = run_benchmark(resolve_config(RunOptions(device="cuda", model="tiny", compile=compile, steps=3, warmup_steps=2)))
    r = run.result
    assert r.status == "ok" and r.loss.all_finite
    assert r.memory.peak_allocated_gb > 0 and r.memory.peak_reserved_gb >= r.memory.peak_allocated_gb
    if match_device(torch.cuda.get_device_name()) is not None:
        assert r.mfu is not None and 0 < r.mfu < 1 and r.peak_source
    else:
        assert r.mfu is None and "not in the spec table" in r.mfu_note


def test_fingerprint_names_the_gpu() -> None:
    accel = new_report(torch.device("cuda", 0)).machine.accelerator
    assert accel.kind == "cuda" and accel.name == torch.cuda.get_device_name(0)
    assert accel.count == torch.cuda.device_count() and accel.capability
