"""Peak memory over a run, the measurement's memory tracker: torch's counters on CUDA, sampled MPS memory, and the
host's resident memory everywhere."""

from __future__ import annotations

import resource
import sys

import torch

from gptbench.hardware.nvml import nvml_used_bytes
from gptbench.reports.schema import Memory
from gptbench.reports.text import GB


def reset_peak_memory(device: torch.device) -> None:
    """Start peak-memory accounting afresh for this run."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


class MemoryTracker:
    """Peak memory over a run: torch's counters on CUDA, sampled MPS memory, host RSS everywhere."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._mps_peak = 0
        self._mps_driver_peak = 0

    def sample(self) -> None:
        """Note the current MPS memory. MPS keeps no peak counter, and after `step()` returns the activations and
        gradients are already freed, so the run samples mid-step too (after each forward, `Trainer.after_forward`);
        the driver's figure keeps the allocator's cached blocks, so it also holds the step's high-water mark
        (torch.mps.driver_allocated_memory: "total GPU memory allocated by Metal driver", cache included)."""
        if self.device.type == "mps":
            self._mps_peak = max(self._mps_peak, torch.mps.current_allocated_memory())
            self._mps_driver_peak = max(self._mps_driver_peak, torch.mps.driver_allocated_memory())

    def read(self) -> Memory:
        memory = Memory(host_peak_rss_gb=round(_peak_rss_bytes() / GB, 3))
        if self.device.type == "cuda":
            memory.peak_allocated_gb = round(torch.cuda.max_memory_allocated(self.device) / GB, 3)
            memory.peak_reserved_gb = round(torch.cuda.max_memory_reserved(self.device) / GB, 3)
            used = nvml_used_bytes(self.device)
            memory.device_used_gb = None if used is None else round(used / GB, 3)
        elif self.device.type == "mps":
            self.sample()
            memory.peak_allocated_gb = round(self._mps_peak / GB, 3)
            memory.peak_reserved_gb = round(self._mps_driver_peak / GB, 3)
        return memory


def _peak_rss_bytes() -> int:
    """This process's peak resident memory. On Linux from VmHWM: getrusage's ru_maxrss carries over the parent's
    peak through fork and exec, so a worker started by a big process would report its parent's memory."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS reports bytes, Linux KiB
