"""How fast does `gptbench prepare` tokenize, with one worker and with several, and what does that mean for FineWeb?

Generates a jsonl corpus on the fly: documents of 3-12 paragraphs of tests/data/the-verdict.txt (English prose,
as FineWeb's web text mostly is), drawn at random with a fixed seed. Then, alternately in one process, runs a bare
`encode_ordinary` loop over the same documents in memory (the ceiling: no reading, no writing) and `prepare` with
1 worker (tokenizing in the main process) and with N worker processes, and prints tokens/s of each (wall time of the
whole call, worker start-up included), the ratios, tokens/s per worker, and the hours those rates imply for
FineWeb's 10B-token sample.

    python benchmarks/prepare_throughput.py                      # ~10M tokens, N = all cores (at least 2)
    python benchmarks/prepare_throughput.py --tokens 50M --workers 8 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import tiktoken

from gptbench.cloud.estimate import FINEWEB_10B_TOKENS, hours_for
from gptbench.data.prepare import PrepareConfig, parse_count, prepare
from gptbench.hardware.machine import cpu_model
from gptbench.model.tokenizer import gpt2_encoding
from gptbench.reports.text import fmt_hours, fmt_rate

VERDICT = Path(__file__).resolve().parent.parent / "tests" / "data" / "the-verdict.txt"


def make_corpus(path: Path, tokens: int, seed: int = 0) -> list[str]:
    """Write documents of random paragraphs to `path` (jsonl) until they hold about `tokens` GPT-2 tokens."""
    enc = gpt2_encoding()
    paragraphs = [p for p in VERDICT.read_text().split("\n\n") if p.strip()]
    sizes = [len(enc.encode_ordinary(p)) for p in paragraphs]
    rng = random.Random(seed)
    docs, total = [], 0
    with path.open("w") as f:
        while total < tokens:
            picks = rng.sample(range(len(paragraphs)), rng.randint(3, 12))
            doc = "\n\n".join(paragraphs[i] for i in picks)
            f.write(json.dumps({"text": doc}) + "\n")
            docs.append(doc)
            total += sum(sizes[i] for i in picks) + 1
    return docs


def bare_rate(docs: list[str]) -> float:
    """Tokens/s of encode_ordinary over documents already in memory, in this process."""
    enc = gpt2_encoding()
    start = time.perf_counter()
    n = sum(len(enc.encode_ordinary(d)) + 1 for d in docs)
    return n / (time.perf_counter() - start)


def prepare_rate(corpus: Path, workers: int, work: Path) -> tuple[float, int]:
    """Tokens/s of a whole `prepare` call (wall time) with `workers`, and the workers it used."""
    out = work / f"shards-{workers}"
    start = time.perf_counter()
    result = prepare(PrepareConfig(inputs=(corpus,), out_dir=out, workers=workers, shard_tokens=10_000_000))
    rate = result.tokens / (time.perf_counter() - start)
    shutil.rmtree(out)
    return rate, result.workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", default="10M", help="corpus size in GPT-2 tokens (10M, 1e8, ...)")
    parser.add_argument("--workers", type=int, default=max(2, os.cpu_count() or 1), help="N for the parallel run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; medians are printed")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gptbench-prepare-bench-"))
    try:
        corpus = work / "corpus.jsonl"
        docs = make_corpus(corpus, parse_count(args.tokens, "--tokens"))
        size_mb = corpus.stat().st_size / 1e6
        print(f"corpus: {len(docs):,} documents, {size_mb:,.1f} MB jsonl, ~{args.tokens} tokens (the-verdict.txt paragraphs)")
        print(f"machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}")
        print(f"tiktoken {tiktoken.__version__}; {time.strftime('%Y-%m-%d')}; other processes on the machine were not stopped")
        bare, one, many, used = [], [], [], args.workers
        for _ in range(args.rounds):
            bare.append(bare_rate(docs))
            one.append(prepare_rate(corpus, 1, work)[0])
            rate, used = prepare_rate(corpus, args.workers, work)
            many.append(rate)
        bare_r, one_r, many_r = (statistics.median(x) for x in (bare, one, many))
        rows = [
            ("encode_ordinary alone (in memory)", bare_r, 1),
            ("prepare, 1 worker (main process)", one_r, 1),
            (f"prepare, {used} worker processes", many_r, used),
        ]
        for label, rate, n in rows:
            per = f"{fmt_rate(rate / n)} per worker" if n > 1 else ""
            eta = fmt_hours(hours_for(FINEWEB_10B_TOKENS, rate))
            print(f"{label:38s} {fmt_rate(rate):>18s} {per:>28s}   FineWeb-10B (10e9 tokens): {eta}")
        print(f"prepare 1 worker / bare encode: {one_r / bare_r:.2f}x   {used} workers / 1 worker: {many_r / one_r:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":  # worker processes are spawned and import this file: run only when asked
    main()
