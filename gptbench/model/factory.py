"""Your own model through gptbench's harness: `--model-factory path/to/file.py:fn` or `package.module:fn`.

The factory is called with the `--model-arg key=value` pairs and returns an nn.Module whose forward takes token ids
(B, T) and returns logits (B, T, V) (the book's GPTModel), or, given targets, (logits, loss) or the loss (nanoGPT's
GPT). Everything else (data, optimizer, timing, telemetry, the report) is gptbench's own. FLOPs per token are counted
with torch.utils.flop_counter over one forward and backward at the run's shapes, since no formula knows the model.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gptbench.errors import GptbenchError
from gptbench.model.blocks import checkpoint_blocks, find_blocks

COUNTED_FORMULA = "counted (torch.utils.flop_counter)"
# Where modules commonly keep their shape: an attribute, or a key of a `config`/`cfg` object or dict.
EXPOSED = {
    "vocab_size": ("vocab_size", "n_vocab"),
    "block_size": ("block_size", "context_length", "max_seq_len", "n_ctx"),
    "n_layer": ("n_layer", "n_layers", "num_layers"),
    "n_head": ("n_head", "n_heads", "num_heads"),
    "n_embd": ("n_embd", "emb_dim", "d_model", "hidden_size"),
}


@dataclass(frozen=True)
class ModelFactory:
    """Where a model comes from, as plain data: it travels inside the run's config to worker processes."""

    spec: str  # as given: path/to/file.py:make_model or package.module:make_model
    args: tuple[str, ...] = ()  # --model-arg key=value, as given
    kind: str = ""  # file | module (filled by `inspect_factory`)
    source: str = ""  # the file's absolute path, or the module's name
    function: str = ""
    sha256: str | None = None  # of the source file, so a changed model is a different model
    n_layer: int = 0  # as the module exposes them; 0 where it does not
    n_head: int = 0
    n_embd: int = 0
    n_params: int = 0
    n_blocks: int = 0  # transformer blocks the module marks (gptbench/model/blocks.py); 0: none found

    @property
    def name(self) -> str:
        """A short name for tables: `factory:book_gpt.py:make_model`."""
        where = Path(self.source).name if self.kind == "file" else self.source
        return f"factory:{where}:{self.function}"


def parse_args(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`--model-arg n_layer=4 --model-arg mlp=swiglu` -> {"n_layer": 4, "mlp": "swiglu"}: numbers, true/false and none
    become Python values, anything else stays text."""
    kwargs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip().isidentifier():
            raise GptbenchError(f"--model-arg {pair!r}: give key=value, the key a Python name (e.g. --model-arg n_layer=4)")
        lowered = text.strip().lower()
        if lowered in ("true", "false", "none"):
            # Any: whatever Python literal the user wrote, passed to their function as is
            value: Any = {"true": True, "false": False, "none": None}[lowered]
        else:
            try:
                value = ast.literal_eval(text.strip())
            except (ValueError, SyntaxError):
                value = text
        kwargs[key.strip()] = value
    return kwargs


def _split_spec(spec: str) -> tuple[str, str]:
    target, sep, function = spec.rpartition(":")
    if not sep or not target or not function.isidentifier():
        raise GptbenchError(
            f"--model-factory {spec}: give FILE.py:FUNCTION or package.module:FUNCTION (e.g. examples/swiglu_gpt.py:make_model)"
        )
    return target, function


def _import_file(path: Path, spec: str) -> ModuleType:
    if not path.is_file():
        raise GptbenchError(f"--model-factory {spec}: no such file {path}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    name = f"gptbench_factory_{digest[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise GptbenchError(f"--model-factory {spec}: {path} cannot be imported as Python")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name while it runs
    try:
        module_spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - any error in the user's file is theirs to fix, in one line
        del sys.modules[name]
        raise GptbenchError(f"--model-factory {spec}: importing {path} failed: {type(e).__name__}: {e}") from e
    return module


def load_factory(spec: str) -> tuple[Callable[..., Any], str, str, str | None]:
    """(the callable, kind, source, sha256 of its file) for `spec`; a missing file, module or function is one line.
    Callable[..., Any]: the user's function, of their signature; what it returns is checked when it is called."""
    target, function = _split_spec(spec)
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target).expanduser().resolve()
        module, kind, source = _import_file(path, spec), "file", str(path)
    else:
        try:
            module = importlib.import_module(target)
        except Exception as e:  # noqa: BLE001 - ImportError, or an error the module raises while importing
            raise GptbenchError(f"--model-factory {spec}: cannot import module {target!r}: {type(e).__name__}: {e}") from e
        kind, source = "module", target
    fn = getattr(module, function, None)
    if not callable(fn):
        names = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise GptbenchError(f"--model-factory {spec}: {source} has no function {function!r} (it has: {', '.join(names[:12])})")
    file = getattr(module, "__file__", None)
    sha = hashlib.sha256(Path(file).read_bytes()).hexdigest() if file and Path(file).is_file() else None
    return fn, kind, source, sha


def build_module(factory: ModelFactory) -> nn.Module:
    """Call the factory with its arguments; anything but an nn.Module is refused."""
    fn, _, _, _ = load_factory(factory.spec)
    kwargs = parse_args(factory.args)
    try:
        model = fn(**kwargs)
    except Exception as e:  # noqa: BLE001 - the factory's own error, reported in one line
        raise GptbenchError(f"--model-factory {factory.spec}: calling it with {kwargs} raised {type(e).__name__}: {e}") from e
    if not isinstance(model, nn.Module):
        raise GptbenchError(f"--model-factory {factory.spec}: it returned {type(model).__name__}, not a torch.nn.Module")
    return model


def exposed(model: nn.Module, field: str) -> int | None:
    """The module's own value for `field` (vocab_size, block_size, n_layer, ...), where it exposes one."""
    holders = [model, getattr(model, "config", None), getattr(model, "cfg", None)]
    for holder in holders:
        for name in EXPOSED[field]:
            value = holder.get(name) if isinstance(holder, dict) else getattr(holder, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def inspect_factory(spec: str, args: tuple[str, ...]) -> tuple[ModelFactory, int | None, int | None]:
    """The factory resolved (where it lives, its file's hash, the shape it exposes, its parameters), and the
    vocabulary and context it exposes (None where it does not). Built on the meta device: no memory, no time."""
    _, kind, source, sha = load_factory(spec)
    factory = ModelFactory(spec, tuple(args), kind, source, spec.rpartition(":")[2], sha)
    try:
        with torch.device("meta"):
            model = build_module(factory)
    except GptbenchError:  # some modules cannot be built on meta tensors: build it for real (a real error stands)
        model = build_module(factory)
    shape: dict[str, Any] = {f: exposed(model, f) or 0 for f in ("n_layer", "n_head", "n_embd")}
    n_params = sum(p.numel() for p in model.parameters())
    resolved = replace(factory, **shape, n_params=n_params, n_blocks=len(find_blocks(model)))
    return resolved, exposed(model, "vocab_size"), exposed(model, "block_size")


def _takes_targets(model: nn.Module) -> bool:
    """Whether forward accepts targets: a second positional parameter, or one named like targets."""
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.name in ("targets", "target", "labels", "y") for p in params)


class ForeignModel(nn.Module):
    """The user's module behind gptbench's interface: `forward(idx, targets)` returns the mean cross-entropy."""

    def __init__(self, inner: nn.Module, vocab_size: int) -> None:
        super().__init__()
        self.inner, self.vocab_size = inner, vocab_size
        self.takes_targets = _takes_targets(inner)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        out = self.inner(idx, targets) if self.takes_targets else self.inner(idx)
        return loss_from(out, idx, targets, self.vocab_size)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def loss_from(out: object, idx: torch.Tensor, targets: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """The loss from what forward returned: a scalar loss, (logits, loss), or logits (B, T, V) to take it from."""
    parts = list(out) if isinstance(out, (tuple, list)) else [out]
    tensors = [p for p in parts if isinstance(p, torch.Tensor)]
    losses = [t for t in tensors if t.dim() == 0]
    if losses:
        return losses[0]
    logits = next((t for t in tensors if t.dim() == 3), None)
    B, T = idx.shape
    if logits is None or tuple(logits.shape[:2]) != (B, T) or logits.shape[2] < vocab_size:
        got = ", ".join(f"a tensor of shape {tuple(t.shape)}" for t in tensors) or type(out).__name__
        raise GptbenchError(
            f"the model's forward returned {got}; gptbench needs logits of shape (B, T, V) = ({B}, {T}, >={vocab_size}), "
            "(logits, loss), or a scalar loss"
        )
    return F.cross_entropy(logits.reshape(B * T, -1).float(), targets.reshape(-1))


def count_flops_per_token(model: nn.Module, micro_batch: int, seq_len: int, vocab_size: int, device: torch.device) -> float:
    """FLOPs of one forward and backward at the run's shapes, per token, as torch.utils.flop_counter counts them:
    matmuls and attention (causal attention in full), not elementwise work, and not the optimizer. Gradients are
    cleared afterwards, so the first real step starts from none."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    idx = torch.randint(0, vocab_size, (micro_batch, seq_len + 1), device=device)
    counter = FlopCounterMode(display=False)
    # Some fused attention kernels (the CPU flash kernel among them) are invisible to the counter; the math backend
    # computes the same attention as plain matmuls it sees. The count is of the model, not of the kernel that runs.
    with counter, sdpa_kernel(SDPBackend.MATH):
        model(idx[:, :-1], idx[:, 1:]).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / (micro_batch * seq_len)


def counted_flops_per_token(
    factory: ModelFactory, built: ForeignModel, micro_batch: int, seq_len: int, recompute: bool = False
) -> float:
    """The factory's model counted on the meta device (no memory, no compute: the math attention backend would
    otherwise hold B x H x T x T scores); a module that cannot run on meta tensors is counted as built. `recompute`:
    count with its blocks checkpointed, so that the recomputed forwards are counted too (hardware FLOPs)."""
    vocab = built.vocab_size
    try:
        with torch.device("meta"):
            ghost = ForeignModel(build_module(factory), vocab)
        if recompute:
            checkpoint_blocks(ghost)
        return count_flops_per_token(ghost, micro_batch, seq_len, vocab, torch.device("meta"))
    except Exception:  # noqa: BLE001 - data-dependent code and some kernels have no meta version
        device = next(built.parameters()).device
        return count_flops_per_token(built, micro_batch, seq_len, vocab, device)
