"""Peak memory of the LM head + cross-entropy, unfused against chunked (gptbench/model/loss.py), on this machine's CPU.

    python3 benchmarks/chunked_loss_memory.py [--tokens 2048] [--chunk 256]

Each loss runs its forward and backward once in a fresh process of its own (GPT-2's head: width 768, vocabulary
50,304, fp32), and the process's peak resident memory (getrusage's ru_maxrss, which tracemalloc cannot replace: it
does not see torch's allocations) is read before and after. What is printed is the growth of each peak, and the
chunked one's as a fraction of the unfused one's, measured in the same run. A CPU's figure; a GPU's allocator differs.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

N_EMBD, VOCAB = 768, 50304  # GPT-2 124M's head, the vocabulary padded as gptbench pads it


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def child(loss: str, tokens: int, chunk: int) -> dict:
    """One forward and backward of `loss` in this process: the peak's growth over the inputs, in MB."""
    import torch

    from gptbench.model.loss import chunked_lm_loss, standard_lm_loss

    torch.manual_seed(0)
    h = torch.randn(tokens, N_EMBD, requires_grad=True)
    w = (torch.randn(VOCAB, N_EMBD) * 0.02).requires_grad_()
    y = torch.randint(0, VOCAB, (tokens,))
    before = _peak_mb()
    value = chunked_lm_loss(h, w, y, chunk) if loss == "chunked" else standard_lm_loss(h, w, y)
    value.backward()
    return {"loss": loss, "value": value.item(), "peak_growth_mb": _peak_mb() - before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2048, help="tokens in the batch (micro-batch x seq)")
    parser.add_argument("--chunk", type=int, default=256, help="tokens per chunk of the chunked loss")
    parser.add_argument("--child", choices=("standard", "chunked"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.tokens, args.chunk)))
        return
    root = str(Path(__file__).resolve().parents[1])
    found = {}
    for loss in ("standard", "chunked"):
        cmd = [sys.executable, __file__, "--child", loss, "--tokens", str(args.tokens), "--chunk", str(args.chunk)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env={"PYTHONPATH": root, "PATH": ""})
        found[loss] = json.loads(proc.stdout.strip().splitlines()[-1])
    logits_mb = args.tokens * VOCAB * 4 / 2**20
    print(f"LM head + cross-entropy, {args.tokens} tokens x vocabulary {VOCAB} (fp32 logits: {logits_mb:,.0f} MB), CPU:")
    for loss, row in found.items():
        print(f"  {loss:9s} loss {row['value']:.6f}   peak memory grew {row['peak_growth_mb']:8,.0f} MB")
    ratio = found["chunked"]["peak_growth_mb"] / found["standard"]["peak_growth_mb"]
    print(f"  chunked / standard peak growth: {ratio:.2f} (chunks of {args.chunk} tokens)")


if __name__ == "__main__":
    main()
