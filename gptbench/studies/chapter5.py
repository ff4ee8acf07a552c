"""The book's chapter-5 run, timed: its GPTModel trained on The Verdict exactly as the book's notebook trains it.

Raschka, *Build a Large Language Model (from Scratch)*, ch. 5 (rasbt/LLMs-from-scratch,
ch05/01_main-chapter-code/ch05.ipynb): the 124M GPTModel at context 256, batch 2, 10 epochs, AdamW (lr 4e-4,
weight decay 0.1, PyTorch's other defaults, no clipping), the text split 90/10 by characters into windows of 256
tokens with stride 256 (train shuffled, last partial batch dropped), the loss on 5 batches of each split every
5 steps, a greedy 50-token sample of "Every effort moves you" after each epoch, and at the end a 15-token sample
with temperature 1.4 and top-k 25. The wall clock covers all of that, as the book's timer does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from gptbench.bench.flops import flops_per_token, formula_for
from gptbench.bench.harness import throughput
from gptbench.bench.memory import MemoryTracker, reset_peak_memory
from gptbench.errors import GptbenchError
from gptbench.model.config import GPTConfig, count_params
from gptbench.model.gpt import GPT
from gptbench.model.tokenizer import gpt2_encoding
from gptbench.reports.schema import Chapter5Result, EpochLoss, Loss, ModelShape, Run, RunConfig, RunResult

THE_VERDICT = Path(__file__).resolve().parent.parent / "data" / "the-verdict.txt"
NOTEBOOK = "rasbt/LLMs-from-scratch ch05/01_main-chapter-code/ch05.ipynb (commit 016d230e), the training cell's output"

# Published times for the same run, as the summary shows them beside this machine's.
PUBLISHED_TIMES: tuple[tuple[str, float, str], ...] = (
    (
        "MacBook Air (the book)",
        5 * 60.0,
        "'about 5 minutes to complete on a MacBook Air or a similar laptop': Raschka, Build a Large Language Model "
        "(from Scratch), ch. 5",
    ),
    (
        "RTX 3090",
        11.0,
        "'On my machine using CUDA on an RTX 3090, it took just less than eleven seconds.': Giles Thomas, 'Writing an "
        "LLM from scratch, part 22 -- finally training our LLM!', gilesthomas.com (2025)",
    ),
)

# (train loss, val loss) of the last evaluation in each of the 10 epochs, as the book's notebook prints them (NOTEBOOK):
# steps 5, 15, 25, 35, 40, 50, 60, 70, 80, 85.
BOOK_EPOCH_LOSSES: tuple[tuple[float, float], ...] = (
    (8.111, 8.339),
    (5.961, 6.616),
    (5.201, 6.348),
    (4.069, 6.226),
    (3.732, 6.160),
    (2.427, 6.141),
    (1.882, 6.233),
    (0.985, 6.242),
    (0.541, 6.393),
    (0.391, 6.452),
)


@dataclass(frozen=True)
class Chapter5Config:
    """The chapter-5 workload; every default is the book's."""

    device: str  # resolved: cpu, cuda:N or mps
    text_path: str = str(THE_VERDICT)
    model: str = "book-124m"
    epochs: int = 10
    context: int = 256  # the book shortens GPT_CONFIG_124M's context from 1024 to 256 for this run
    batch: int = 2
    lr: float = 4e-4
    weight_decay: float = 0.1
    train_ratio: float = 0.9
    eval_every: int = 5  # optimizer steps between evaluations
    eval_batches: int = 5  # batches of each split an evaluation averages over
    epoch_sample_tokens: int = 50  # the greedy sample printed after each epoch
    prompt: str = "Every effort moves you"
    sample_tokens: int = 15
    temperature: float = 1.4
    top_k: int = 25
    seed: int = 123

    def __post_init__(self) -> None:
        for name in ("epochs", "context", "batch", "eval_every", "eval_batches", "sample_tokens", "top_k"):
            if getattr(self, name) <= 0:
                raise GptbenchError(f"--{name.replace('_', '-')} must be a positive whole number, got {getattr(self, name)}")
        if not self.temperature > 0:
            raise GptbenchError(f"--temperature must be positive, got {self.temperature}")

    def model_config(self) -> GPTConfig:
        """The preset with its context cut to the run's, as the book does (learned positions: 256 rows)."""
        return replace(GPTConfig.from_name(self.model), block_size=self.context)


@dataclass(frozen=True)
class Split:
    """A split's windows: inputs and targets, each (windows, context)."""

    inputs: torch.Tensor
    targets: torch.Tensor

    def batches(self, size: int, generator: torch.Generator | None, drop_last: bool) -> list[tuple[torch.Tensor, ...]]:
        """The windows in batches; shuffled when a generator is given."""
        n = len(self.inputs)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        stop = n - n % size if drop_last else n
        return [(self.inputs[order[i : i + size]], self.targets[order[i : i + size]]) for i in range(0, stop, size)]


def windows(tokens: list[int], context: int) -> Split:
    """Non-overlapping windows of `context` tokens and their next-token targets (the book's stride = context)."""
    starts = range(0, len(tokens) - context, context)
    ids = torch.tensor(tokens, dtype=torch.long)
    if not starts:
        raise GptbenchError(f"the text holds {len(tokens)} tokens, too few for one window of {context}; give a longer text")
    return Split(torch.stack([ids[s : s + context] for s in starts]), torch.stack([ids[s + 1 : s + context + 1] for s in starts]))


def split_text(text: str, config: Chapter5Config) -> tuple[Split, Split]:
    """Train and validation windows: the text cut by characters at train_ratio, each part tokenized on its own."""
    cut = int(config.train_ratio * len(text))
    enc = gpt2_encoding()
    train, val = (
        windows(enc.encode_ordinary(text[:cut]), config.context),
        windows(enc.encode_ordinary(text[cut:]), config.context),
    )
    if len(train.inputs) < config.batch:
        raise GptbenchError(f"the training part makes {len(train.inputs)} windows, fewer than one batch of {config.batch}")
    return train, val


def read_text(path: str) -> str:
    """The training text, or a one-line error."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise GptbenchError(f"--text {path}: cannot read it as UTF-8 text ({e})") from e


@torch.no_grad()
def mean_loss(model: GPT, batches: list[tuple[torch.Tensor, ...]], limit: int, device: torch.device) -> float:
    """Mean loss over the first `limit` batches, the model in eval mode (no dropout)."""
    model.eval()
    chosen = batches[:limit]
    total = sum(float(model(x.to(device), y.to(device))) for x, y in chosen)
    model.train()
    return total / len(chosen)


@torch.no_grad()
def generate(model: GPT, ids: list[int], new_tokens: int, temperature: float = 0.0, top_k: int | None = None) -> list[int]:
    """Extend `ids` one token at a time; temperature 0 is greedy, else sample from the top-k after scaling."""
    model.eval()
    device = next(model.parameters()).device
    idx = torch.tensor([ids], device=device)
    for _ in range(new_tokens):
        logits = model(idx[:, -model.config.block_size :])[:, -1, :]
        if temperature > 0:
            if top_k is not None:
                kth = torch.topk(logits, top_k).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            nxt = torch.multinomial(F.softmax(logits / temperature, dim=-1), 1)
        else:
            nxt = logits.argmax(dim=-1, keepdim=True)
        idx = torch.cat([idx, nxt], dim=1)
    model.train()
    return idx[0].tolist()


@dataclass
class _Progress:
    """What the loop has seen so far."""

    step: int = -1  # the book counts from -1, so its first evaluation comes after the first step (step 0)
    tokens: int = 0


def train(config: Chapter5Config, on_eval: Callable[[EpochLoss], None] | None = None) -> RunResult:
    """Run the workload; return the report's result with the run's wall time, losses and samples."""
    device = torch.device(config.device)
    train_split, val_split = split_text(read_text(config.text_path), config)
    torch.manual_seed(config.seed)
    model = GPT(config.model_config()).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    shuffle = torch.Generator().manual_seed(config.seed)
    reset_peak_memory(device)
    tracker = MemoryTracker(device)
    enc, seen, evals, epochs, samples, steps_s = gpt2_encoding(), _Progress(), [], [], [], []
    val_batches = val_split.batches(config.batch, None, drop_last=False)
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        for x, y in train_split.batches(config.batch, shuffle, drop_last=True):
            t0 = time.perf_counter()
            optimizer.zero_grad()
            model(x.to(device), y.to(device)).backward()
            optimizer.step()
            _sync(device)
            steps_s.append(time.perf_counter() - t0)
            tracker.sample()
            seen.step, seen.tokens = seen.step + 1, seen.tokens + x.numel()
            if seen.step % config.eval_every == 0:
                train_batches = train_split.batches(config.batch, shuffle, drop_last=True)
                point = EpochLoss(epoch, seen.step, seen.tokens, *_eval_pair(model, train_batches, val_batches, config))
                evals.append(point)
                if on_eval:
                    on_eval(point)
        epochs.append(evals[-1] if evals and evals[-1].epoch == epoch else None)
        samples.append(enc.decode(generate(model, enc.encode_ordinary(config.prompt), config.epoch_sample_tokens)))
    _sync(device)
    wall_s = time.perf_counter() - start
    return _result(config, model, steps_s, wall_s, evals, epochs, samples, tracker)


def _eval_pair(
    model: GPT, train_batches: list[tuple[torch.Tensor, ...]], val_batches: list[tuple[torch.Tensor, ...]], config: Chapter5Config
) -> tuple[float, float]:
    device = next(model.parameters()).device
    return mean_loss(model, train_batches, config.eval_batches, device), mean_loss(
        model, val_batches, config.eval_batches, device
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def final_sample(model: GPT, config: Chapter5Config) -> str:
    """The book's closing sample: `sample_tokens` new tokens at the temperature and top-k, seeded as the book seeds."""
    enc = gpt2_encoding()
    torch.manual_seed(config.seed)
    return enc.decode(generate(model, enc.encode_ordinary(config.prompt), config.sample_tokens, config.temperature, config.top_k))


def _result(
    config: Chapter5Config,
    model: GPT,
    steps_s: list[float],
    wall_s: float,
    evals: list[EpochLoss],
    epochs: list[EpochLoss | None],
    samples: list[str],
    tracker: MemoryTracker,
) -> RunResult:
    tokens_per_step = config.batch * config.context
    rate = throughput(steps_s, tokens_per_step)
    fpt = flops_per_token(model.config, config.context)
    trained = len(steps_s) * tokens_per_step
    chapter5 = Chapter5Result(
        wall_s=round(wall_s, 3),
        train_tokens=trained,
        tokens_per_sec_wall=trained / wall_s,
        epochs=config.epochs,
        steps=len(steps_s),
        evals=evals,
        epoch_losses=[e for e in epochs if e is not None],
        epoch_samples=samples,
        prompt=config.prompt,
        sample=final_sample(model, config),
        temperature=config.temperature,
        top_k=config.top_k,
        seed=config.seed,
    )
    return RunResult(
        tokens_per_sec=rate.tokens_per_sec,
        tokens_per_sec_p10=rate.p10,
        tokens_per_sec_p90=rate.p90,
        step_time_s=rate.step_time_s,
        step_times_s=[round(t, 6) for t in steps_s],
        warmup_s=0.0,  # nothing is set apart: the book's run has no warm-up, and its first steps count
        flops_per_token=fpt,
        flops_formula=formula_for(model.config),
        achieved_tflops=rate.tokens_per_sec * fpt / 1e12,
        tokens_per_sec_per_rank=rate.tokens_per_sec,
        loss=Loss(
            first=evals[0].train_loss if evals else None,
            last=evals[-1].train_loss if evals else None,
            all_finite=all(math.isfinite(e.train_loss) and math.isfinite(e.val_loss) for e in evals),
        ),
        mfu_note="the chapter-5 run trains in fp32 as the book does; see `gptbench run` for MFU",
        memory=tracker.read(),
        chapter5=chapter5,
    )


def run_config(config: Chapter5Config, n_params: int) -> RunConfig:
    """The report's description of the chapter-5 run."""
    m = config.model_config()
    shape = ModelShape(
        m.preset, m.n_layer, m.n_head, m.n_embd, m.vocab_size, m.block_size, n_params, m.tie_head, m.qkv_bias, m.dropout
    )
    # torch.optim.AdamW's default implementation: foreach when every tensor is on CUDA, else the for-loop one
    adamw = "foreach" if config.device.startswith("cuda") else "for-loop"
    return RunConfig(
        model=shape,
        seq_len=config.context,
        micro_batch=config.batch,
        grad_accum=1,
        world_size=1,
        tokens_per_step=config.batch * config.context,
        dtype="fp32",
        compile=False,
        attention="sdpa",
        fused_adamw=False,
        tf32=False,
        data=f"text:{Path(config.text_path).resolve()}",
        device=config.device,
        adamw=adamw,
        warmup_steps=0,
        steps=None,
    )


def run_chapter5(config: Chapter5Config, on_eval: Callable[[EpochLoss], None] | None = None) -> Run:
    """The chapter-5 run as a report's Run, named `book chapter 5`."""
    result = train(config, on_eval)
    n_params = count_params(config.model_config())
    run = Run(config=run_config(config, n_params), result=result, name="book chapter 5")
    run.config.steps = result.chapter5.steps if result.chapter5 else None
    return run
