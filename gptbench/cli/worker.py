"""The child side of gptbench/bench/worker.py, run as `python -m gptbench.cli.worker`: read a config on stdin,
measure it, print the Run as one tagged JSON line on stdout. Not a user-facing command."""

from __future__ import annotations

import dataclasses
import json
import os
import sys

from gptbench.bench.config import config_from_dict
from gptbench.bench.runner import run_benchmark
from gptbench.bench.worker import RESULT_PREFIX
from gptbench.errors import GptbenchError


def main() -> None:
    """Measure one configuration; a config that is refused exits 2 with its message on stderr."""
    try:
        config = config_from_dict(json.loads(sys.stdin.read()))
        run = run_benchmark(config)  # a --model-factory module whose output gptbench cannot use is refused here
    except GptbenchError as e:
        sys.stderr.write(f"{e}\n")
        sys.exit(2)
    sys.stdout.write(RESULT_PREFIX + json.dumps(dataclasses.asdict(run)) + "\n")
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: nothing is left to flush, and CUDA teardown can be slow


if __name__ == "__main__":
    main()
