"""A model's transformer blocks: where activation checkpointing recomputes and where FSDP2 shards.

gptbench's GPT keeps its blocks in `h`. A `--model-factory` module marks its own in one of two ways, looked up in
this order:

1. an attribute `gptbench_blocks`: a list (or nn.ModuleList / nn.Sequential) of the block modules, in order;
2. a container at one of the paths in BLOCK_PATHS (`transformer.h` as in nanoGPT and Hugging Face's GPT-2, `h`,
   `trf_blocks` as in the book's GPTModel, `blocks`, `layers`, `model.layers` as in Llama-style models), holding at
   least one module.

A module with neither has no blocks: `--activation-checkpointing` and `--shard full` refuse it, in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn
from torch.utils.checkpoint import checkpoint

MARKER = "gptbench_blocks"
BLOCK_PATHS = ("transformer.h", "h", "trf_blocks", "blocks", "layers", "model.layers")
HOW_TO_MARK = (
    f"give the module an attribute {MARKER} = [its block modules], or keep them in an nn.ModuleList or nn.Sequential at "
    f"one of: {', '.join(BLOCK_PATHS)}"
)


def _at(module: object, path: str) -> object:
    found: object = module
    for name in path.split("."):
        found = getattr(found, name, None)
        if found is None:
            return None
    return found


def find_blocks(model: nn.Module) -> list[nn.Module]:
    """The transformer blocks of `model` in order (empty when it marks none); a ForeignModel is looked into."""
    inner = getattr(model, "inner", None)
    if isinstance(inner, nn.Module) and type(model).__name__ == "ForeignModel":
        model = inner
    marked = getattr(model, MARKER, None)
    if marked is not None:
        return [m for m in marked if isinstance(m, nn.Module)]
    for path in BLOCK_PATHS:
        found = _at(model, path)
        if isinstance(found, (nn.ModuleList, nn.Sequential)) and len(found) > 0:
            return list(found)
    return []


def _recomputed(forward: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        # Non-reentrant checkpointing: it works with torch.compile, with keyword arguments and with inputs that need
        # no gradient, and torch recommends it ("use_reentrant=False", torch.utils.checkpoint docs, 2.4+).
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)

    return run


def checkpoint_blocks(model: nn.Module) -> int:
    """Make each block of `model` keep only its inputs for backward and recompute the rest there; returns how many
    blocks were wrapped. The block's own forward is wrapped, so its module hooks (FSDP2's gather of the block's
    weights among them) run outside the recomputed region, as torchtitan's per-block checkpoint wrapper places them."""
    blocks = find_blocks(model)
    for block in blocks:
        block.forward = _recomputed(block.forward)  # an instance attribute: nn.Module.__call__ looks it up first
    return len(blocks)


def has_blocks(model: nn.Module) -> bool:
    """Whether `model` marks transformer blocks that checkpointing and FSDP2 can work on."""
    return bool(find_blocks(model))

