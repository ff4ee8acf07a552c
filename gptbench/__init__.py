"""gptbench: how fast does this machine train GPT-2, and what would a whole run cost."""

__version__ = "0.1.0"
