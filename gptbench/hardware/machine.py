"""A fingerprint of the machine a run measured: software versions, CPU, memory, accelerator."""

from __future__ import annotations

import os
import platform
import socket
from importlib import metadata
from pathlib import Path

import torch

from gptbench.hardware.allocator import allocator_in_use
from gptbench.hardware.nvml import driver_version
from gptbench.hardware.threads import physical_cores, usable_cpus
from gptbench.reports.schema import Accelerator, CpuInfo, Machine
from gptbench.reports.text import GB


def cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo (Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_gb() -> float | None:
    physical = physical_memory_gb()
    return None if physical is None else round(physical, 1)


def physical_memory_gb() -> float | None:
    """This machine's RAM in GB (1e9 bytes), or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB
    except (ValueError, OSError, AttributeError):
        return None


def memory_capacity_gb(device: str) -> tuple[float | None, str]:
    """All the memory a run on `device` (resolved: cpu, cuda:N, mps) could ever use, and what it is: a CUDA GPU's own
    memory, else this machine's RAM (MPS shares it)."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_properties(device).total_memory / GB, f"memory on {device}"
    return physical_memory_gb(), "physical memory (RAM) on this machine"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _accelerator(device: torch.device) -> Accelerator:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return Accelerator(
            kind="cuda",
            name=props.name,
            count=torch.cuda.device_count(),
            memory_gb=round(props.total_memory / GB, 1),
            driver=driver_version(device),
            capability=f"{props.major}.{props.minor}",
        )
    if device.type == "mps":
        return Accelerator(kind="mps", name=f"Apple {platform.machine()} GPU (MPS)", count=1)
    return Accelerator(kind="cpu", name=cpu_model(), count=0)


def fingerprint(device: torch.device) -> Machine:
    """Describe this machine as seen from `device`'s point of view."""
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return Machine(
        hostname=socket.gethostname(),
        os=platform.platform(),
        python=platform.python_version(),
        torch=torch.__version__,
        cuda=torch.version.cuda,
        cudnn=str(cudnn) if cudnn else None,
        triton=_version("triton"),
        cpu=CpuInfo(model=cpu_model(), cores=os.cpu_count(), physical_cores=physical_cores(), usable_cpus=len(usable_cpus())),
        memory_gb=_memory_gb(),
        accelerator=_accelerator(device),
        allocator=allocator_in_use()[0],
    )
