"""Token counts as people write them: `10e9`, `2.5B`, `300M`, `fineweb-10b`, `chinchilla`."""

from __future__ import annotations

import math
import re

from gptbench.cloud.estimate import FINEWEB_10B_TOKENS
from gptbench.errors import GptbenchError

CHINCHILLA_TOKENS_PER_PARAM = 20  # Hoffmann et al. 2022 (Chinchilla), compute-optimal: ~20 tokens per parameter
PRESET_TOKENS = {"fineweb-10b": FINEWEB_10B_TOKENS, "fineweb10b": FINEWEB_10B_TOKENS}
SUFFIXES = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_NUMBER = re.compile(r"^([0-9][0-9_,]*(?:\.[0-9]*)?(?:e[+-]?[0-9]+)?)\s*([kmbgt]?)$")


def parse_tokens(text: str, n_params: int | None = None, epochs: float = 1.0) -> tuple[float, str]:
    """Tokens for a run, and how they were reached: a number, a preset name, or `chinchilla` (needs n_params)."""
    if not epochs > 0:
        raise GptbenchError(f"--epochs must be positive, got {epochs:g}")
    key = text.strip().lower()
    if key in PRESET_TOKENS:
        tokens, how = PRESET_TOKENS[key], f"{key} ({PRESET_TOKENS[key]:.3g} tokens)"
    elif key == "chinchilla":
        if n_params is None:
            raise GptbenchError("--tokens chinchilla needs a model: pass --model (e.g. --model 124m)")
        tokens = float(CHINCHILLA_TOKENS_PER_PARAM * n_params)
        how = f"chinchilla: {CHINCHILLA_TOKENS_PER_PARAM} × {n_params:,} parameters"
    else:
        tokens, how = _number(text), f"{text.strip()}"
    if epochs != 1:
        how += f" × {epochs:g} epochs"
    if not (math.isfinite(tokens * epochs) and tokens * epochs >= 1):
        times = "" if epochs == 1 else f" × --epochs {epochs:g}"
        raise GptbenchError(f"--tokens {text.strip()}{times}: give a finite count of at least 1 token")
    return tokens * epochs, how


def _number(text: str) -> float:
    match = _NUMBER.match(text.strip().lower())
    if not match:
        if text.strip().startswith("-"):
            raise GptbenchError(f"--tokens must be positive, got {text.strip()}")
        names = ", ".join([*PRESET_TOKENS, "chinchilla"])
        raise GptbenchError(f"--tokens {text!r}: not a token count; write e.g. 10e9, 2.5B, 300M, or one of: {names}")
    value = float(match.group(1).replace("_", "").replace(",", "")) * SUFFIXES[match.group(2)]
    if not value > 0:
        raise GptbenchError(f"--tokens must be positive, got {text.strip()}")
    return value
