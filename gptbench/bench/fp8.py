"""`--fp8`: the model's linear layers trained in FP8 through torchao's float8 training (`convert_to_float8_training`:
each nn.Linear becomes a Float8Linear whose matmuls run on FP8 tensor cores with dynamic tensorwise scales; the rest
of the step stays in bf16 autocast). Whether it can run here is decided before any work (hardware/capability.py
`fp8_problem`); torchao is imported only by a run that asked for it, so a CPU install needs none."""

from __future__ import annotations

from torch import nn

from gptbench.errors import GptbenchError

# FP8 matmuls (torch._scaled_mm) need both dimensions of the weight divisible by 16 (the "hardware requirement" that
# torchao 0.17's _auto_filter_for_recipe in torchao/float8/float8_linear_utils.py checks too). The LM head stays in
# bf16, as torchtitan's filter keeps its output layer: its weight is the tied embedding, and the logits feed the
# softmax directly.
FP8_ALIGN = 16
SKIPPED_LAYERS = ("lm_head",)


def fp8_eligible(module: nn.Module, fqn: str) -> bool:
    """Whether torchao converts this module: an nn.Linear outside the LM head whose dimensions FP8 matmuls take."""
    if not isinstance(module, nn.Linear) or fqn.split(".")[-1] in SKIPPED_LAYERS:
        return False
    return module.in_features % FP8_ALIGN == 0 and module.out_features % FP8_ALIGN == 0


def convert_to_fp8(model: nn.Module) -> int:
    """Swap the eligible linears of `model` (in place) for torchao's Float8Linear; returns how many were swapped."""
    try:
        from torchao.float8 import convert_to_float8_training
    except ImportError as e:  # checked before the run; an install broken since then still says so in one line
        raise GptbenchError(f"--fp8: torchao does not import ({e}); pip install 'gptbench[fp8]'") from e
    chosen = [name for name, module in model.named_modules() if fp8_eligible(module, name)]
    if not chosen:
        raise GptbenchError("--fp8: the model has no linear layer FP8 can run (each needs dimensions divisible by 16)")
    convert_to_float8_training(model, module_filter_fn=fp8_eligible)
    return len(chosen)
