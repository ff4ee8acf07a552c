"""The GPU spec table (gpus.csv): dense peaks per dtype, memory, bandwidth, power, the link between GPUs of one machine,
each row with its source."""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from gptbench.errors import GptbenchError

SPECS_FILE = Path(__file__).with_name("gpus.csv")
SPECS_ENV = "GPTBENCH_GPUS_FILE"  # a user's own table, same columns


@dataclass(frozen=True)
class GpuSpec:
    """One GPU model; peaks are dense TFLOP/s (tensor cores, FP32 accumulate; fp32 on CUDA cores)."""

    name: str
    match: str  # regex against torch.cuda.get_device_name()
    aliases: tuple[str, ...]
    vendor: str
    form_factor: str
    memory_gb: float | None
    memory_bw_gbs: float | None
    bf16_tflops: float | None
    fp16_tflops: float | None
    tf32_tflops: float | None
    fp32_tflops: float | None
    board_power_w: float | None
    source: str
    source_date: str
    architecture: str = ""  # the chip family (hopper, ada, ampere-ga100...): which GPUs share a calibration's evidence
    link: str = ""  # how GPUs of one machine reach each other: nvlink4-nvswitch, pcie4-x16...
    link_bw_gbs: float | None = None  # per GPU, per direction (the datasheet's bidirectional figure halved)
    link_source: str = ""  # where the link figure comes from (the datasheet in `source`, unless it says otherwise)

    def peak_tflops(self, dtype: str, tf32: bool) -> float | None:
        """The dense peak for the precision the matmuls run in: bf16, fp16, or fp32 (tf32 when enabled)."""
        if dtype == "fp32":
            return self.tf32_tflops if tf32 else self.fp32_tflops
        return {"bf16": self.bf16_tflops, "fp16": self.fp16_tflops}.get(dtype)


def _number(text: str | None) -> float | None:
    text = (text or "").strip()
    return float(text) if text else None


@lru_cache(maxsize=4)
def _load(path: str) -> tuple[GpuSpec, ...]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        return tuple(
            GpuSpec(
                name=r["name"].strip().lower(),
                match=r["match"].strip(),
                aliases=tuple(a.strip().lower() for a in (r.get("aliases") or "").split(";") if a.strip()),
                vendor=r.get("vendor", "").strip(),
                form_factor=r.get("form_factor", "").strip(),
                architecture=(r.get("architecture") or "").strip().lower(),
                memory_gb=_number(r.get("memory_gb")),
                memory_bw_gbs=_number(r.get("memory_bw_gbs")),
                bf16_tflops=_number(r.get("bf16_tflops")),
                fp16_tflops=_number(r.get("fp16_tflops")),
                tf32_tflops=_number(r.get("tf32_tflops")),
                fp32_tflops=_number(r.get("fp32_tflops")),
                board_power_w=_number(r.get("board_power_w")),
                source=r.get("source", "").strip(),
                source_date=r.get("source_date", "").strip(),
                link=(r.get("link") or "").strip(),
                link_bw_gbs=_number(r.get("link_bw_gbs")),
                link_source=(r.get("link_source") or "").strip(),
            )
            for r in rows
        )
    except OSError as e:
        raise GptbenchError(f"GPU spec table {path}: cannot read ({e.strerror})") from e
    except (KeyError, ValueError) as e:
        raise GptbenchError(f"GPU spec table {path}: malformed ({e}); see gptbench/hardware/gpus.csv for the columns") from e


def gpu_specs(path: str | Path | None = None) -> tuple[GpuSpec, ...]:
    """All rows of the spec table: `path`, else $GPTBENCH_GPUS_FILE, else the table shipped in the package."""
    return _load(str(path or os.environ.get(SPECS_ENV) or SPECS_FILE))


def match_device(device_name: str, path: str | Path | None = None) -> GpuSpec | None:
    """The row whose regex matches a device name as torch reports it; None for a GPU not in the table."""
    for spec in gpu_specs(path):
        if spec.match and re.search(spec.match, device_name, flags=re.IGNORECASE):
            return spec
    return None


def find_gpu(name: str, path: str | Path | None = None) -> GpuSpec:
    """The row named `name` (its name, an alias, or a device name); unknown names raise with the choices."""
    key = name.strip().lower()
    for spec in gpu_specs(path):
        if key == spec.name or key in spec.aliases:
            return spec
    matched = match_device(name, path)
    if matched is None:
        names = ", ".join(s.name for s in gpu_specs(path))
        raise GptbenchError(f"unknown GPU {name!r}; known GPUs: {names}")
    return matched
