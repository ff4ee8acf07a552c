from __future__ import annotations

import math

import pytest
import torch

from gptbench.errors import GptbenchError
from gptbench.model.config import PRESETS, GPTConfig, count_params
from gptbench.model.gpt import GPT
from gptbench.model.tokenizer import gpt2_encoding


def test_124m_has_gpt2_parameter_count() -> None:
    config = GPTConfig.from_name("124m")
    assert count_params(config) == 124_439_808
    with torch.device("meta"):
        model = GPT(config)
    assert model.num_params() == 124_439_808


@pytest.mark.parametrize(("name", "millions"), [("355m", 354.8), ("774m", 774.0), ("1558m", 1557.6)])
def test_larger_presets_match_gpt2_sizes(name: str, millions: float) -> None:
    assert count_params(PRESETS[name]) / 1e6 == pytest.approx(millions, abs=0.1)


def test_padding_rounds_vocab_to_50304() -> None:
    assert GPTConfig.from_name("124m").padded().vocab_size == 50304


def test_shape_overrides_apply_on_a_preset() -> None:
    config = GPTConfig.from_name("124m", n_layer=4, n_head=4, n_embd=256)
    assert (config.n_layer, config.n_head, config.n_embd, config.block_size) == (4, 4, 256, 1024)


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(GptbenchError, match="unknown model preset 'huge'"):
        GPTConfig.from_name("huge")
    with pytest.raises(GptbenchError, match="divisible"):
        GPTConfig.from_name("124m", n_head=5)


def test_lm_head_is_tied_and_init_follows_gpt2() -> None:
    torch.manual_seed(0)
    config = GPTConfig(n_layer=8, n_head=4, n_embd=256, vocab_size=4096, block_size=64)
    model = GPT(config)
    assert model.lm_head.weight is model.wte.weight
    assert model.h[0].mlp.c_fc.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.h[0].mlp.c_proj.weight.std().item() == pytest.approx(0.02 / math.sqrt(16), rel=0.05)
    assert model.h[0].attn.c_attn.bias.abs().sum().item() == 0


def test_naive_and_sdpa_attention_agree() -> None:
    config = PRESETS["tiny"]
    torch.manual_seed(0)
    a = GPT(config, attention="sdpa")
    b = GPT(config, attention="naive")
    b.load_state_dict(a.state_dict())
    idx = torch.randint(0, config.vocab_size, (2, 50))
    assert torch.allclose(a(idx), b(idx), atol=1e-5)


def test_tokenizer_known_answers() -> None:
    enc = gpt2_encoding()
    assert enc.n_vocab == 50257
    assert enc.encode("Every effort moves you") == [6109, 3626, 6100, 345]
    assert enc.encode("Hello world") == [15496, 995]
    assert enc.encode("<|endoftext|>", allowed_special="all") == [50256]


def _copy_into_hf(ours: GPT, hf: torch.nn.Module) -> None:
    """Hugging Face's GPT-2 keeps weights as Conv1D (in, out): transpose our Linear (out, in) weights.
    A model without qkv biases (the book's) gets Hugging Face's zeroed and frozen."""
    target = hf.state_dict()
    if not ours.config.qkv_bias:
        for block in hf.transformer.h:
            torch.nn.init.zeros_(block.attn.c_attn.bias)
            block.attn.c_attn.bias.requires_grad_(False)
        target = hf.state_dict()
    for name, tensor in ours.state_dict().items():
        key = "lm_head.weight" if name == "lm_head.weight" else f"transformer.{name}"
        if name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
            tensor = tensor.t()
        assert target[key].shape == tensor.shape, key
        target[key] = tensor
    hf.load_state_dict(target)


def _hugging_face_twin(config: GPTConfig, attention: str) -> tuple[GPT, torch.nn.Module]:
    """Our model and Hugging Face's GPT2LMHeadModel of the same shape holding the same weights, both in eval mode."""
    transformers = pytest.importorskip("transformers", reason="the Hugging Face reference model needs transformers")
    hf_config = transformers.GPT2Config(
        vocab_size=config.vocab_size,
        n_positions=config.block_size,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        activation_function="gelu_new",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        layer_norm_epsilon=1e-5,
        tie_word_embeddings=config.tie_head,
    )
    hf = transformers.GPT2LMHeadModel(hf_config).eval()
    torch.manual_seed(0)
    ours = GPT(config, attention=attention).eval()
    _copy_into_hf(ours, hf)
    return ours, hf


@pytest.mark.parametrize("attention", ["sdpa", "naive"])
def test_logits_match_hugging_face_gpt2(attention: str) -> None:
    config = GPTConfig(n_layer=3, n_head=4, n_embd=128, vocab_size=50257, block_size=256)
    ours, hf = _hugging_face_twin(config, attention)
    idx = torch.tensor([gpt2_encoding().encode("Every effort moves you, and every step counts, said the painter.")])
    with torch.no_grad():
        expected = hf(idx).logits
        got = ours(idx)
    assert (got - expected).abs().max().item() < 1e-4


def test_book_124m_has_the_books_parameter_count() -> None:
    """The book gives 163,009,536 for its GPTModel at the 124M shape: GPT-2's count without the qkv biases
    (12 x 3 x 768) plus an untied 50257 x 768 head."""
    config = GPTConfig.from_name("book-124m")
    assert count_params(config) == 163_009_536 == 124_439_808 - 12 * 3 * 768 + 50257 * 768
    with torch.device("meta"):
        model = GPT(config)
    assert model.num_params() == 163_009_536
    assert model.lm_head.weight is not model.wte.weight and model.h[0].attn.c_attn.bias is None


@pytest.mark.parametrize("attention", ["sdpa", "naive"])
def test_book_model_matches_hugging_face_with_untied_head_and_zero_qkv_bias(attention: str) -> None:
    config = GPTConfig.from_name("book-tiny", n_layer=3, n_head=4, n_embd=128)
    ours, hf = _hugging_face_twin(config, attention)  # dropout is off in eval mode on both sides
    idx = torch.tensor([gpt2_encoding().encode("Every effort moves you, and every step counts, said the painter.")])
    with torch.no_grad():
        expected, got = hf(idx).logits, ours(idx)
    assert (got - expected).abs().max().item() < 1e-4
    assert not torch.equal(ours.lm_head.weight, ours.wte.weight)  # the head really is a matrix of its own


@pytest.mark.parametrize("attention", ["sdpa", "naive"])
def test_book_dropout_is_live_in_training_and_off_in_eval(attention: str) -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_name("book-tiny"), attention=attention)
    idx = torch.randint(0, 50257, (2, 32))
    assert not torch.equal(model(idx), model(idx))  # fresh masks each call
    model.eval()
    assert torch.equal(model(idx), model(idx))


def test_book_presets_keep_pytorchs_default_init() -> None:
    torch.manual_seed(0)
    book, gpt2 = GPT(GPTConfig.from_name("book-tiny")), GPT(GPTConfig.from_name("tiny"))
    assert book.wte.weight.std().item() == pytest.approx(1.0, rel=0.05)  # nn.Embedding's N(0, 1)
    assert gpt2.wte.weight.std().item() == pytest.approx(0.02, rel=0.05)
