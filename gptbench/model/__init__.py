"""GPT-2: configuration and presets, the model, and the tokenizer."""

from gptbench.model.config import PRESETS, GPTConfig

__all__ = ["PRESETS", "GPTConfig"]
