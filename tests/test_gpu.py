"""CUDA-only checks; they skip cleanly on a machine without a GPU (see conftest.py)."""

from __future__ import annotations

import pytest
import torch

from gptbench.bench.config import RunOptions, resolve_config
from gptbench.bench.runner import new_report, run_benchmark
from gptbench.cloud.specs import match_device

pytestmark = pytest.mark.gpu


def test_cuda_defaults_are_the_fast_path() -> None:
    config = resolve_config(RunOptions(device="cuda", model="tiny"))
    assert config.compile and config.tf32 and config.adamw == "fused"
    assert config.dtype == ("bf16" if torch.cuda.get_device_capability() >= (8, 0) else "fp16")


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
