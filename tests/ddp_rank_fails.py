"""Test support, not a test: `gptbench <args>` as one rank of a torchrun job, where rank 1's measurement fails
(its run raises, as an out-of-memory error would) while rank 0 goes on. tests/test_distributed.py launches it
with torch.distributed.run and checks that the whole job ends promptly, with rank 1's message and no report."""

from __future__ import annotations

import sys

import gptbench.cli.progress as progress
from gptbench.bench.distributed import RankEnv
from gptbench.cli import main


def _fails(config: object, show: bool) -> None:
    raise RuntimeError("rank 1 failed on purpose (tests/ddp_rank_fails.py)")


if __name__ == "__main__":
    env = RankEnv.from_environ()
    if env is not None and env.rank == 1:
        progress.measure_with_progress = _fails  # what the rank path calls to train and time
    sys.argv = ["gptbench", *sys.argv[1:]]
    main()
