"""The model: GPT-2 and the book's GPTModel, their presets, the tokenizer, and a user's own model.

    config.py    GPTConfig and PRESETS (pure data, torch-free), parameter counts
    gpt.py       the model, in one file
    loss.py      the LM head + cross-entropy without the full logits (chunked), and the libraries' fused ones
    tokenizer.py GPT-2's BPE from the shipped ranks (offline)
    factory.py   --model-factory: loading a user's nn.Module and checking it can be trained and counted
    blocks.py    a model's transformer blocks (how a factory marks them) and per-block activation checkpointing
"""

from gptbench.model.config import PRESETS, GPTConfig

__all__ = ["PRESETS", "GPTConfig"]
