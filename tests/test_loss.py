"""The chunked LM head + cross-entropy (gptbench/model/loss.py) gives the unfused loss and its gradients: the hidden
states', the head's, and through weight tying the embedding's, on the CPU, eager and traced by torch.compile."""

from __future__ import annotations

import pytest
import torch

from gptbench.model.config import GPTConfig
from gptbench.model.gpt import GPT
from gptbench.model.loss import IGNORE_INDEX, chunked_lm_loss, standard_lm_loss

FP32_RTOL = 1e-6  # relative to the largest magnitude of each tensor: the sums run in another order, nothing else
# bf16 autocast: both paths round the logits' gradient to bf16 before its two matmuls, but the chunked one sums the
# head's gradient over chunks in fp32 where the unfused one has one bf16 result; bf16 has 8 bits of mantissa
# (relative step 2^-8 = 0.0039), so two roundings apart is within 1e-2 of the largest entry.
BF16_RTOL = 1e-2
# The whole model in fp32: the loss's own differences (under 1e-6, above) travel back through the blocks' layer norms
# and attention, which scale them by each layer's conditioning; measured up to 7.4e-6 on the tiny preset (2 blocks).
MODEL_FP32_RTOL = 2e-5


def _close(got: torch.Tensor, want: torch.Tensor, rtol: float) -> bool:
    scale = want.abs().max().clamp_min(1e-30)
    return bool(((got.float() - want.float()).abs().max() / scale) <= rtol)


def _loss_and_grads(fn, h: torch.Tensor, w: torch.Tensor, y: torch.Tensor, autocast: bool = False):  # noqa: ANN001, ANN202
    h, w = h.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = fn(h, w, y)
    loss.backward()
    return loss.detach(), h.grad, w.grad


@pytest.mark.parametrize(("tokens", "chunk"), [(37, 8), (64, 64), (5, 100), (101, 1)])
def test_chunked_loss_and_gradients_equal_the_unfused_ones(tokens: int, chunk: int) -> None:
    torch.manual_seed(0)
    h, w, y = torch.randn(tokens, 24), torch.randn(97, 24) * 0.5, torch.randint(0, 97, (tokens,))
    want = _loss_and_grads(standard_lm_loss, h, w, y)
    got = _loss_and_grads(lambda a, b, t: chunked_lm_loss(a, b, t, chunk), h, w, y)
    for g, e in zip(got, want, strict=True):
        assert _close(g, e, FP32_RTOL)


def test_ignored_targets_count_in_neither_the_sum_nor_the_mean() -> None:
    torch.manual_seed(1)
    h, w, y = torch.randn(19, 16), torch.randn(50, 16), torch.randint(0, 50, (19,))
    y[[0, 7, 18]] = IGNORE_INDEX
    want = _loss_and_grads(standard_lm_loss, h, w, y)
    got = _loss_and_grads(lambda a, b, t: chunked_lm_loss(a, b, t, 4), h, w, y)
    assert all(_close(g, e, FP32_RTOL) for g, e in zip(got, want, strict=True))
    assert got[1][[0, 7, 18]].abs().max() == 0  # an ignored token sends no gradient back


def test_under_bf16_autocast_the_chunked_loss_stays_within_bf16_rounding() -> None:
    torch.manual_seed(2)
    h, w, y = torch.randn(45, 32), torch.randn(113, 32) * 0.3, torch.randint(0, 113, (45,))
    want = _loss_and_grads(standard_lm_loss, h, w, y, autocast=True)
    got = _loss_and_grads(lambda a, b, t: chunked_lm_loss(a, b, t, 16), h, w, y, autocast=True)
    assert got[0].dtype == torch.float32 and got[1].dtype == got[2].dtype == torch.float32  # as the params are
    assert all(_close(g, e, BF16_RTOL) for g, e in zip(got, want, strict=True))


def _tiny_pair() -> tuple[GPT, GPT]:
    config = GPTConfig.from_name("tiny")
    torch.manual_seed(3)
    standard = GPT(config)
    chunked = GPT(config, loss="chunked")
    chunked.load_state_dict(standard.state_dict())
    chunked.loss_chunk = 7  # 3 x 11 = 33 tokens: four chunks of 7 and one of 5
    return standard, chunked


def _model_grads(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, autocast: bool = False):  # noqa: ANN202
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = model(x, y)
    loss.backward()
    return loss.detach(), {name: p.grad for name, p in model.named_parameters()}


@pytest.mark.parametrize("autocast", [False, True])
def test_the_tiny_gpt_with_the_chunked_loss_trains_as_the_unfused_one(autocast: bool) -> None:
    standard, chunked = _tiny_pair()
    x = torch.randint(0, standard.config.vocab_size, (3, 11))
    y = torch.randint(0, standard.config.vocab_size, (3, 11))
    want_loss, want = _model_grads(standard, x, y, autocast)
    got_loss, got = _model_grads(chunked, x, y, autocast)
    assert _close(got_loss, want_loss, BF16_RTOL if autocast else FP32_RTOL)
    rtol = BF16_RTOL if autocast else MODEL_FP32_RTOL
    assert chunked.lm_head.weight is chunked.wte.weight  # the tied embedding: one gradient, head's and lookup's summed
    assert got.keys() == want.keys() and "wte.weight" in got
    for name in want:
        assert _close(got[name], want[name], rtol), name


def test_torch_compile_traces_the_chunked_loss_whole() -> None:
    """fullgraph: a graph break inside the loss (its autograd.Function, the chunk loop) would raise; aot_eager runs the
    traced forward and backward without building kernels, so the test takes seconds on a CPU."""
    torch.manual_seed(4)
    h, w, y = torch.randn(33, 16), torch.randn(61, 16), torch.randint(0, 61, (33,))
    y[5] = IGNORE_INDEX
    compiled = torch.compile(lambda a, b, t: chunked_lm_loss(a, b, t, 7), backend="aot_eager", fullgraph=True)
    want = _loss_and_grads(standard_lm_loss, h, w, y)
    got = _loss_and_grads(compiled, h, w, y)
    assert all(_close(g, e, FP32_RTOL) for g, e in zip(got, want, strict=True))


def test_the_logits_are_still_there_without_targets() -> None:
    standard, chunked = _tiny_pair()
    x = torch.randint(0, 100, (2, 5))
    assert torch.equal(chunked(x), standard(x))
    with pytest.raises(ValueError, match="loss must be one of"):
        GPT(GPTConfig.from_name("tiny"), loss="fused")
