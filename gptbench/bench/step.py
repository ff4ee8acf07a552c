"""The training step: autocast, gradient accumulation, clipping, AdamW, optional torch.compile, activation
checkpointing, and in a process group DDP, ZeRO-1 or FSDP2 (bench/sharding.py)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import torch

from gptbench.bench.config import CUDA_GRAPH_MODES, BenchConfig
from gptbench.bench.distributed import compile_kwargs, is_distributed, wrap_ddp
from gptbench.bench.flops import hardware_flops_per_token
from gptbench.bench.fp8 import convert_to_fp8
from gptbench.bench.sharding import make_adamw, make_zero_adamw, shard_fully
from gptbench.data.sources import BatchSource
from gptbench.errors import GptbenchError
from gptbench.hardware.capability import AUTOCAST_DTYPES
from gptbench.model.blocks import checkpoint_blocks
from gptbench.model.factory import ForeignModel, build_module, counted_flops_per_token
from gptbench.model.gpt import GPT


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
        if config.shard != "none" and not is_distributed():
            raise GptbenchError(f"--shard {config.shard} splits state over processes: run it with --nproc 2 or more")
        torch.manual_seed(config.seed)
        self.counted_flops_per_token: float | None = None  # a --model-factory model's, counted before the warm-up
        self.hardware_flops_per_token: float | None = None  # with recomputation (checkpointing) counted; None: none
        model: GPT | ForeignModel
        if config.factory is None:
            model = GPT(config.model, attention=config.attention, loss=config.loss).to(device)
        else:
            model = ForeignModel(build_module(config.factory), config.model.vocab_size).to(device)
            fpt = counted_flops_per_token(config.factory, model, config.micro_batch, config.seq_len)
            self.counted_flops_per_token = fpt
        if config.fp8:  # before checkpointing and compile: both then see the FP8 linears
            convert_to_fp8(model)
        if config.activation_checkpointing:
            checkpoint_blocks(model)
            self.hardware_flops_per_token = self._hardware_flops(model)
        self.n_params = model.num_params()  # before sharding: FSDP2's parameters are this rank's shards
        self.ddp, self.fsdp = None, None
        self.model: Callable[..., torch.Tensor]  # the module, wrapped (DDP, FSDP2) or compiled
        if config.shard == "full":
            self.fsdp = shard_fully(model, config.dtype, config.compile, config.compile_mode)
            self.model = self.fsdp
        elif is_distributed():  # DDP, compiled in the order torch recommends (see wrap_ddp)
            self.ddp = wrap_ddp(model, device, config.compile, config.compile_mode)
            self.model = self.ddp
        else:
            self.model = torch.compile(model, **compile_kwargs(config.compile_mode)) if config.compile else model
        zero = config.shard == "optimizer"
        self.optimizer = (make_zero_adamw if zero else make_adamw)(model, config.lr, config.adamw)
        self.params = [p for p in model.parameters()]
        self._autocast_dtype = AUTOCAST_DTYPES.get(config.dtype)
        self.scaler = torch.amp.GradScaler(device.type, enabled=config.dtype == "fp16")
        self.data_wait_s = 0.0  # host time spent fetching batches, over all steps so far
        self.after_forward: Callable[[], None] | None = None  # called between forward and backward (MPS memory)
        # CUDA graphs (reduce-overhead, max-autotune) replay into the same memory: each micro-batch starts a new
        # replay, marked, as torch.compiler.cudagraph_mark_step_begin's docs ask of loops it cannot see; the loss kept
        # is `loss / accum`, a tensor of its own, never the graph's output.
        self._cuda_graphs = config.compile and config.compile_mode in CUDA_GRAPH_MODES

    def _hardware_flops(self, model: GPT | ForeignModel) -> float:
        c = self.config
        if c.factory is None or not isinstance(model, ForeignModel):
            return hardware_flops_per_token(c.model, c.seq_len)
        return counted_flops_per_token(c.factory, model, c.micro_batch, c.seq_len, recompute=True)

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self._autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.config.torch_device.type, dtype=self._autocast_dtype)

    def _grad_sync(self, last: bool) -> contextlib.AbstractContextManager[object]:
        # DDP all-reduces gradients once per optimizer step, after the last micro-batch; the others only
        # accumulate locally (forward and backward both inside no_sync, as DDP's docs require). FSDP2 reduce-scatters
        # after every micro-batch instead: skipping it (set_requires_gradient_sync(False)) would keep each rank's
        # gradients unsharded, in fp32 under the bf16 policy, until the last one (torch/distributed/fsdp/_fully_shard/
        # _fsdp_param_group.py), which is the memory --shard full exists to save and the memory model counts sharded.
        return self.ddp.no_sync() if self.ddp is not None and not last else contextlib.nullcontext()

    def step(self) -> torch.Tensor:
        """One optimizer step; returns the mean loss over its micro-batches as a device tensor (no sync)."""
        accum = self.config.grad_accum
        total = None
        for i in range(accum):
            t0 = time.perf_counter()
            x, y = self.source.next_batch()
            self.data_wait_s += time.perf_counter() - t0
            if self._cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()
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
        assert total is not None  # grad_accum >= 1 (BenchConfig checks it)
        return total
