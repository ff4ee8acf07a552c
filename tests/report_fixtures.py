"""Made-up reports for the `compare` tests (never real measurements: those live in reports/ only)."""

from __future__ import annotations

from pathlib import Path

from gptbench.reports.schema import (
    Accelerator,
    CpuInfo,
    Machine,
    Memory,
    ModelShape,
    Report,
    Run,
    RunConfig,
    RunResult,
)
from gptbench.reports.store import write_report

GPT2 = ModelShape("124m", 12, 12, 768, 50304, 1024, 124_475_904)
FORMULA = "6N + 12LTC (PaLM appx. B; N = params excl. position embeddings, tied LM head counted)"


def run(seq: int, batch: int, dtype: str, tokens_per_sec: float | None, status: str = "ok", **result: object) -> Run:
    """A GPT-2 124M run; `tokens_per_sec=None` with status oom/error for a failed one."""
    compiled = dtype != "fp32"
    config = RunConfig(GPT2, seq, batch, 1, 1, seq * batch, dtype, compiled, "sdpa", True, compiled, "synthetic", adamw="fused")
    error = None if status == "ok" else "CUDA out of memory. Tried to allocate 3.07 GiB"
    memory = Memory(**result.pop("memory", {}))  # type: ignore[arg-type]
    flops = FORMULA if status == "ok" else None
    return Run(config, RunResult(status, error, tokens_per_sec, flops_formula=flops, memory=memory, **result))  # type: ignore[arg-type]


def machine(host: str, kind: str, name: str, count: int = 1) -> Machine:
    return Machine(hostname=host, cpu=CpuInfo(name, 8), accelerator=Accelerator(kind=kind, name=name, count=count))


def laptop() -> Report:
    """A laptop CPU at seq 256, fp32."""
    runs = [run(256, 1, "fp32", 950.0, memory={"host_peak_rss_gb": 2.1})]
    return Report(machine("laptop", "cpu", "Intel Core i7-1185G7", 0), runs, label="laptop", created="2026-11-01T09:00:00+00:00")


def rtx3090() -> Report:
    """A home RTX 3090 at seq 1024, bf16."""
    runs = [run(1024, 16, "bf16", 60_000.0, mfu=0.42, memory={"peak_allocated_gb": 18.2})]
    return Report(machine("home", "cuda", "NVIDIA GeForce RTX 3090"), runs, created="2026-11-02T09:00:00+00:00")


def a100() -> Report:
    """A rented A100 at seq 1024, bf16: one run fits, a bigger batch runs out of memory."""
    runs = [
        run(1024, 16, "bf16", 150_000.0, mfu=0.33, memory={"peak_allocated_gb": 21.5}),
        run(1024, 64, "bf16", None, status="oom"),
    ]
    return Report(machine("cloud", "cuda", "NVIDIA A100-SXM4-80GB"), runs, created="2026-11-03T09:00:00+00:00")


def write_all(folder: Path) -> dict[str, Path]:
    """The three reports, written into `folder` with write_report; their paths by name."""
    return {name: write_report(make(), folder) for name, make in (("laptop", laptop), ("rtx3090", rtx3090), ("a100", a100))}
