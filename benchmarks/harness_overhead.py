"""Is gptbench's harness free, and is its train step as fast as a plain nanoGPT-style loop?

Runs, alternately in one process, (a) gptbench's harness and a bare PyTorch loop over the same model and
optimizer, and (b) gptbench's step against a straightforward nanoGPT-style model and loop written out here,
eager and (unless --no-compile) compiled. Prints median tokens/s of each and the ratios. Every contender runs
fp32 on the same device, models and batches on it, each timed step ended by a device synchronisation.

    python benchmarks/harness_overhead.py                 # shape 4 layers, 4 heads, 256 wide, seq 256, batch 8
    python benchmarks/harness_overhead.py --rounds 7 --steps 5
    python benchmarks/harness_overhead.py --device cuda   # the same on the GPU of a GPU session
    python benchmarks/harness_overhead.py --device cuda --shape gpt2 --part b   # gptbench's default run's shape

--shape gpt2 is gptbench's default run on a GPU (GPT-2 124M, seq 1024, micro-batch 16, bf16 autocast, compiled, TF32,
fused AdamW) against the nanoGPT-style loop as nanoGPT's train.py runs it (bf16 autocast, torch.compile, fused AdamW,
TF32): the same shape, each side's own tuning.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from gptbench.bench.config import RunOptions, resolve_config
from gptbench.bench.harness import measure
from gptbench.bench.step import Trainer
from gptbench.data.sources import make_source
from gptbench.hardware.capability import AUTOCAST_DTYPES, matmul_precision
from gptbench.hardware.device import synchronize


class PlainAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd)
        self.proj = nn.Linear(n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))


class PlainBlock(nn.Module):
    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.attn = PlainAttention(n_embd, n_head)
        self.fc, self.out = nn.Linear(n_embd, 4 * n_embd), nn.Linear(4 * n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class PlainGPT(nn.Module):
    """The model as a nanoGPT-style script writes it: same shape and maths, nothing tuned."""

    def __init__(self, vocab: int, block: int, n_layer: int, n_head: int, n_embd: int) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, n_embd), nn.Embedding(block, n_embd)
        self.blocks = nn.ModuleList(PlainBlock(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab, bias=False)
        self.head.weight = self.wte.weight

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1), device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))


def plain_loop(
    model: nn.Module, opt: torch.optim.Optimizer, batches: list, steps: int, autocast: torch.dtype | None = None
) -> list[float]:
    """A textbook loop: forward, backward, clip, step, zero_grad, loss.item(). On a GPU the item() waits for the loss
    only as far as the stream has got; the synchronisations make each timed step hold all of its own work and none
    queued before it (the other contender's), as measure() does for gptbench."""
    device = batches[0][0].device
    synchronize(device)
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        x, y = batches[i % len(batches)]
        with torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
            loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return times


def harness_times(trainer: Trainer, steps: int, tokens: int) -> list[float]:
    device = trainer.config.torch_device
    return measure(trainer.step, lambda: synchronize(device), 0, steps, tokens).step_times_s


def median_rate(times: list[float], tokens: int) -> float:
    return statistics.median(tokens / t for t in times)


def alternate(contenders: dict, rounds: int, steps: int, tokens: int) -> dict[str, float]:
    """Run each contender for `steps`, round-robin `rounds` times; median tokens/s over all its steps."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for fn in contenders.values():  # one untimed turn each: the allocator settles at its steady-state footprint
        fn(steps)
    for r in range(rounds):
        # Rotate who goes first: on this CPU the first turn of a round runs measurably slower, whoever takes it.
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name] += contenders[name](steps)
    return {name: median_rate(t, tokens) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12, help="turns per contender (round-robin)")
    parser.add_argument("--steps", type=int, default=2, help="steps per turn")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--part", choices=("a", "b", "both"), default="both")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (every contender runs there)")
    parser.add_argument("--shape", choices=("small", "gpt2"), default="small", help="small: the A/B's own; gpt2: see above")
    args = parser.parse_args()
    if args.shape == "gpt2":
        shape = dict(n_layer=12, n_head=12, n_embd=768)
        options = RunOptions(device=args.device, model="124m", seq_len=1024, micro_batch=16)  # the device's defaults
    else:
        shape = dict(n_layer=4, n_head=4, n_embd=256)
        # Eager, fp32 without TF32 for gptbench as for the plain loop (CUDA's defaults would compile and use TF32).
        step = dict(seq_len=256, micro_batch=8, dtype="fp32", attention="sdpa", compile=False, tf32=False)
        options = RunOptions(device=args.device, model="124m", **step, **shape)
    config = resolve_config(options)
    tokens = config.tokens_per_step
    device = config.torch_device
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    what = f"{'compiled' if config.compile else 'eager'}, {config.dtype}, tf32 {'on' if config.tf32 else 'off'}"
    print(f"torch {torch.__version__}, {device} ({where}); shape {shape}, seq {config.seq_len}, batch {config.micro_batch}")
    print(f"gptbench: {what}")

    trainer = Trainer(config, make_source(config.data, config.micro_batch, config.seq_len, config.torch_device))
    batches = [trainer.source.next_batch() for _ in range(4)]
    warm = 2
    start = time.perf_counter()
    with matmul_precision(config.tf32):
        harness_times(trainer, warm, tokens)
        if config.compile:
            print(f"(gptbench's warm-up, compilation included, took {time.perf_counter() - start:.1f} s, outside the timings)")
        if args.part in ("a", "both"):
            part_a(trainer, batches, args, tokens)
        if args.part in ("b", "both") and args.shape == "gpt2":
            part_b_gpt2(trainer, batches, args, shape, warm)
        elif args.part in ("b", "both"):
            part_b(trainer, batches, args, options, shape, warm)


def part_a(trainer: Trainer, batches: list, args: argparse.Namespace, tokens: int) -> None:
    print("\n(a) harness overhead: gptbench's harness vs a bare loop over the same model and optimizer")
    bare = lambda n: plain_loop(trainer.model, trainer.optimizer, batches, n)  # noqa: E731
    rates = alternate(
        {"gptbench harness": lambda n: harness_times(trainer, n, tokens), "bare loop": bare}, args.rounds, args.steps, tokens
    )
    for name, rate in rates.items():
        print(f"  {name:<22} {rate:10,.0f} tok/s")
    cost = 1 - rates["gptbench harness"] / rates["bare loop"]
    print(f"  harness cost: {cost:+.2%} of the bare loop's throughput (target <= 2%)")
    # The A/B above carries this machine's noise; this is the harness's own time, measured directly:
    # everything measure() does per step outside the train step itself.
    inner: list[float] = []
    device = trainer.config.torch_device

    def timed_step() -> torch.Tensor:
        t0 = time.perf_counter()
        loss = trainer.step()
        synchronize(device)  # on a GPU the step returns once its kernels are queued: the wait is the step's, not ours
        inner.append(time.perf_counter() - t0)
        return loss

    outer = measure(timed_step, lambda: synchronize(device), 0, args.steps * 3, tokens).step_times_s
    own = statistics.median(o - i for o, i in zip(outer, inner, strict=True))
    print(f"  harness bookkeeping: {own * 1e6:,.0f} us per step = {own / statistics.median(outer):.3%} of step time")


def part_b(trainer: Trainer, batches: list, args: argparse.Namespace, options: RunOptions, shape: dict, warm: int) -> None:
    config, tokens = trainer.config, trainer.config.tokens_per_step
    torch.manual_seed(0)
    plain = PlainGPT(config.model.vocab_size, config.model.block_size, **shape).to(config.torch_device)
    plain_opt = torch.optim.AdamW(plain.parameters(), lr=6e-4, betas=(0.9, 0.95), weight_decay=0.1)
    plain_loop(plain, plain_opt, batches, warm)
    contenders = {
        "gptbench eager": lambda n: harness_times(trainer, n, tokens),
        "nanoGPT-style eager": lambda n: plain_loop(plain, plain_opt, batches, n),
    }
    if not args.no_compile:
        compiled_config = resolve_config(RunOptions(**{**options.__dict__, "compile": True}))
        compiled = Trainer(compiled_config, trainer.source)
        start = time.perf_counter()
        harness_times(compiled, warm, tokens)
        print(f"\n(compiling took {time.perf_counter() - start:.1f} s, outside the timings)")
        contenders["gptbench --compile"] = lambda n: harness_times(compiled, n, tokens)
    print("\n(b) gptbench's train step vs a straightforward nanoGPT-style model and loop")
    rates = alternate(contenders, args.rounds, args.steps, tokens)
    base = rates["nanoGPT-style eager"]
    for name, rate in rates.items():
        print(f"  {name:<22} {rate:10,.0f} tok/s   {rate / base:5.2f}x nanoGPT-style")
    assert all(math.isfinite(r) for r in rates.values())


def part_b_gpt2(trainer: Trainer, batches: list, args: argparse.Namespace, shape: dict, warm: int) -> None:
    """gptbench's default run against nanoGPT's train.py defaults, at GPT-2 124M's shape (TF32 is on for both)."""
    config, tokens = trainer.config, trainer.config.tokens_per_step
    torch.manual_seed(0)
    plain = PlainGPT(config.model.vocab_size, config.model.block_size, **shape).to(config.torch_device)
    fused = config.torch_device.type == "cuda"
    plain_opt = torch.optim.AdamW(plain.parameters(), lr=6e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=fused)
    plain_compiled = torch.compile(plain) if config.compile else plain
    dtype = AUTOCAST_DTYPES.get(config.dtype)
    start = time.perf_counter()
    plain_loop(plain_compiled, plain_opt, batches, warm, dtype)
    print(f"(the nanoGPT-style loop's warm-up took {time.perf_counter() - start:.1f} s, outside the timings)")
    contenders = {
        "gptbench default": lambda n: harness_times(trainer, n, tokens),
        "nanoGPT-style": lambda n: plain_loop(plain_compiled, plain_opt, batches, n, dtype),
    }
    print(f"\n(b) gptbench's default run vs a nanoGPT-style model and loop, {config.dtype}, both compiled={config.compile}")
    rates = alternate(contenders, args.rounds, args.steps, tokens)
    base = rates["nanoGPT-style"]
    for name, rate in rates.items():
        print(f"  {name:<22} {rate:10,.0f} tok/s   {rate / base:5.2f}x nanoGPT-style")
    assert all(math.isfinite(r) for r in rates.values())


if __name__ == "__main__":
    main()
