from __future__ import annotations

import csv
import re

import pytest

from gptbench.errors import GptbenchError
from gptbench.hardware.specs import SPECS_FILE, find_gpu, gpu_specs, match_device

# Names as torch.cuda.get_device_name() reports them.
DEVICE_NAMES = {
    "NVIDIA A100-SXM4-40GB": "a100-sxm4-40gb",
    "NVIDIA A100-SXM4-80GB": "a100-sxm4-80gb",
    "NVIDIA A100 80GB PCIe": "a100-pcie-80gb",
    "NVIDIA H100 80GB HBM3": "h100-sxm",
    "NVIDIA H100 PCIe": "h100-pcie",
    "NVIDIA H100 NVL": "h100-nvl",
    "NVIDIA H200": "h200",
    "NVIDIA H200 NVL": "h200-nvl",
    "NVIDIA L4": "l4",
    "NVIDIA L40S": "l40s",
    "NVIDIA A10": "a10",
    "NVIDIA A10G": "a10g",
    "NVIDIA GeForce RTX 3090": "rtx3090",
    "NVIDIA GeForce RTX 4090": "rtx4090",
    "NVIDIA GeForce RTX 5090": "rtx5090",
}


@pytest.mark.parametrize(("device", "name"), DEVICE_NAMES.items())
def test_device_names_find_their_row(device: str, name: str) -> None:
    spec = match_device(device)
    assert spec is not None and spec.name == name


def test_unknown_gpu_has_no_row() -> None:
    assert match_device("NVIDIA Imaginary X1") is None
    with pytest.raises(GptbenchError, match="unknown GPU 'x1'"):
        find_gpu("x1")


def test_every_row_has_a_source_and_dense_peaks_in_order() -> None:
    with open(SPECS_FILE, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(gpu_specs()) >= 15
    for spec in gpu_specs():
        assert spec.source and re.match(r"\d{4}-\d{2}", spec.source_date), spec.name
        if spec.bf16_tflops and spec.tf32_tflops:
            assert spec.tf32_tflops < spec.bf16_tflops, spec.name  # tf32 runs at half the bf16 rate or less


def test_design_reference_peaks() -> None:
    """The reference peaks the project holds itself to: dense bf16 with FP32 accumulate, form factor respected (each
    row's datasheet is cited in gptbench/hardware/gpus.csv)."""
    assert find_gpu("a100").peak_tflops("bf16", tf32=False) == 312
    assert find_gpu("h100-sxm").peak_tflops("bf16", tf32=False) == pytest.approx(989, abs=1)
    assert find_gpu("h100-pcie").peak_tflops("bf16", tf32=False) == pytest.approx(756, abs=1)
    assert find_gpu("3090").peak_tflops("bf16", tf32=False) == pytest.approx(71)
    assert find_gpu("4090").peak_tflops("bf16", tf32=False) == pytest.approx(165, abs=0.5)
    assert find_gpu("a100").peak_tflops("fp32", tf32=True) == 156
    assert find_gpu("a100").peak_tflops("fp32", tf32=False) == 19.5


def test_rtx3090ti_has_the_ada_whitepapers_dense_tensor_peaks() -> None:
    """The Ada whitepaper's RTX 4090 vs RTX 3090 Ti table: 80 dense BF16/FP16 TFLOPS with FP32 accumulate (160 with
    sparsity), TF32 40; the row was empty, so `estimate --gpu rtx3090ti` refused ("no dense bf16 peak")."""
    spec = find_gpu("rtx3090ti")
    assert (spec.bf16_tflops, spec.fp16_tflops, spec.tf32_tflops) == (80, 80, 40)
    assert "Ada GPU Architecture whitepaper" in spec.source and "RTX 3090 Ti column" in spec.source
    assert find_gpu("3090").peak_tflops("bf16", tf32=False) < spec.peak_tflops("bf16", tf32=False)  # 84 SMs at 1.86 GHz


def test_estimate_projects_an_rtx3090ti() -> None:
    from typer.testing import CliRunner

    from gptbench.cli import app

    result = CliRunner().invoke(app, ["estimate", "--gpu", "rtx3090ti", "--json"])
    assert result.exit_code == 0, result.output
    assert "no dense bf16 peak" not in result.output and '"basis": "projected"' in result.output
