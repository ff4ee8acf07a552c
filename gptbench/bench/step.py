"""The training step: autocast, gradient accumulation, clipping, AdamW, optional torch.compile."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import torch

from gptbench.bench.config import BenchConfig
from gptbench.bench.distributed import is_distributed, wrap_ddp
from gptbench.data.sources import BatchSource
from gptbench.hardware.capability import AUTOCAST_DTYPES
from gptbench.model.factory import ForeignModel, build_module, counted_flops_per_token
from gptbench.model.gpt import GPT


def make_adamw(model: torch.nn.Module, lr: float, impl: str) -> torch.optim.AdamW:
    """GPT-2-style AdamW: betas (0.9, 0.95), weight decay 0.1 on matrices only (not biases, norms)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    flags = {"fused": {"fused": True}, "foreach": {"foreach": True}, "for-loop": {"foreach": False, "fused": False}}
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8, **flags[impl])


@contextlib.contextmanager
def intra_op_threads(threads: int | None) -> Iterator[None]:
    """Run with `threads` torch intra-op threads (None: leave torch's setting), then restore the previous count."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Trainer:
    """A GPT-2 with its optimizer on one device; `step()` runs one optimizer step over grad_accum micro-batches."""

    def __init__(self, config: BenchConfig, source: BatchSource) -> None:
        self.config, self.source = config, source
        device = config.torch_device
        torch.manual_seed(config.seed)
        self.counted_flops_per_token: float | None = None  # a --model-factory model's, counted before the warm-up
        if config.factory is None:
            model = GPT(config.model, attention=config.attention).to(device)
        else:
            model = ForeignModel(build_module(config.factory), config.model.vocab_size).to(device)
            fpt = counted_flops_per_token(config.factory, model, config.micro_batch, config.seq_len)
            self.counted_flops_per_token = fpt
        self.n_params = model.num_params()
        self.optimizer = make_adamw(model, config.lr, config.adamw)
        self.params = [p for p in model.parameters()]
        # In a process group: DDP, compiled in the order torch recommends (see wrap_ddp).
        self.ddp = wrap_ddp(model, device, config.compile) if is_distributed() else None
        self.model = self.ddp or (torch.compile(model) if config.compile else model)
        self._autocast_dtype = AUTOCAST_DTYPES.get(config.dtype)
        self.scaler = torch.amp.GradScaler(device.type, enabled=config.dtype == "fp16")
        self.data_wait_s = 0.0  # host time spent fetching batches, over all steps so far
        self.after_forward: Callable[[], None] | None = None  # called between forward and backward (MPS memory)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self._autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.config.torch_device.type, dtype=self._autocast_dtype)

    def _grad_sync(self, last: bool) -> contextlib.AbstractContextManager:
        # DDP all-reduces gradients once per optimizer step, after the last micro-batch; the others only
        # accumulate locally (forward and backward both inside no_sync, as DDP's docs require).
        return self.ddp.no_sync() if self.ddp is not None and not last else contextlib.nullcontext()

    def step(self) -> torch.Tensor:
        """One optimizer step; returns the mean loss over its micro-batches as a device tensor (no sync)."""
        accum = self.config.grad_accum
        total = None
        for i in range(accum):
            t0 = time.perf_counter()
            x, y = self.source.next_batch()
            self.data_wait_s += time.perf_counter() - t0
            with self._grad_sync(last=i == accum - 1):
                with self._autocast():
                    loss = self.model(x, y)
                if self.after_forward is not None:
                    self.after_forward()
                loss = loss / accum
                total = loss.detach() if total is None else total + loss.detach()
                self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return total
