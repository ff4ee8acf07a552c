"""GPT-2's byte-pair encoding, built offline from the ranks file shipped in this package."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import tiktoken
from tiktoken.load import load_tiktoken_bpe

RANKS_FILE = Path(__file__).with_name("gpt2.tiktoken")
EOT_TOKEN = 50256  # <|endoftext|>
# GPT-2's pre-tokenisation regex (tiktoken calls it the r50k pattern).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


@lru_cache(maxsize=1)
def gpt2_encoding() -> tiktoken.Encoding:
    """The GPT-2 encoding (n_vocab 50257), with no network access."""
    ranks = load_tiktoken_bpe(str(RANKS_FILE))
    return tiktoken.Encoding(
        name="gpt2",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": EOT_TOKEN},
    )
