"""Building a network whose weights a checkpoint is about to replace, without computing them.

:meth:`iggt.model.iggt.IGGT.from_state_dict` builds the modules inside :func:`skip_initialisation`
and then adopts the checkpoint's tensors. Inside it every floating-point tensor a factory makes
(parameters, float buffers) is a meta tensor: it has a shape and a dtype but no values, so no
code can compute on a number nobody wrote, and code that asks for one (``.item()``, ``bool()``)
fails at once. The initialisers and random fills on meta tensors are skipped, and elementwise
arithmetic on them gives an empty meta tensor of its result's shape and dtype: on the meta device
torch runs both through Python reference kernels whose first call imports ``torch._dynamo``
(1.1-1.6 s on the 2-core CPU, most of the load). Integer tensors (the attention index buffers)
are computed on the CPU as in a plain build, since torch's meta kernels for the ops that make
them (``torch.stack`` ...) are also Python ones.

Why not the CPU with the initialisers skipped: it hung the test suite. ``nn.init.trunc_normal_``
redraws until every value lies in its bounds; with the draws skipped it tested uninitialised
memory, whatever the allocator last held there, for ever (a fresh process's memory is zeros, so
only long runs hung). A module the checkpoint leaves incomplete keeps meta tensors and is rebuilt
with its real initialisation (``IGGT._materialize_missing``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

FACTORIES = frozenset({torch.empty, torch.empty_strided, torch.zeros, torch.ones, torch.full})
"""Factories of a shape (how parameters are made): their floating-point tensors are made on the
meta device. Tensors computed from values (``arange``, ``linspace``, ``tensor`` ...) are made on
the CPU as in a plain build: they are small, and their meta kernels are Python ones."""
RANDOM_FACTORIES = frozenset({torch.randn, torch.rand})
"""Factories of random floating-point tensors; replaced by ``torch.empty`` on the meta device."""
RANDOM_FILLS = frozenset(
    {
        Tensor.normal_,
        Tensor.uniform_,
        Tensor.random_,
        Tensor.bernoulli_,
        Tensor.exponential_,
        Tensor.geometric_,
        Tensor.log_normal_,
        Tensor.cauchy_,
    }
)
"""In-place random fills; on a meta tensor they return it as it is."""
_ARITHMETIC = ("add", "sub", "mul", "div", "true_divide", "floor_divide", "remainder", "pow", "rsub")
_DUNDERS = ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow")


def _functions(owner, names) -> frozenset:
    return frozenset(getattr(owner, name) for name in names if hasattr(owner, name))


ELEMENTWISE = (
    _functions(torch, _ARITHMETIC)
    | _functions(Tensor, (*_ARITHMETIC, "neg", "__neg__"))
    | _functions(Tensor, [f"__{name}__" for name in _DUNDERS] + [f"__r{name}__" for name in _DUNDERS])
)
"""Out-of-place elementwise arithmetic; on meta tensors its result comes from shapes and dtypes."""
_UNARY = ("neg", "erfinv", "clamp", "clamp_min", "clamp_max", "sqrt", "exp", "log", "abs", "tanh", "sigmoid")
ELEMENTWISE_IN_PLACE = _functions(Tensor, [f"{name}_" for name in (*_ARITHMETIC, *_UNARY)]) | _functions(
    Tensor, [f"__i{name}__" for name in _DUNDERS]
)
"""In-place elementwise functions; on a meta tensor they return it as it is. The unary ones include
what ``nn.init.trunc_normal_`` runs after its draw (``erfinv_``, ``clamp_``), for the torch versions
whose initialisers reach the mode op by op rather than whole (2.11 does; 2.13 does not)."""


class _SkipInitialisation(TorchFunctionMode):
    """Floating-point factories -> meta; initialisers, random fills and arithmetic on meta: no values."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in RANDOM_FACTORIES and kwargs.get("device") is None:
            kwargs.pop("generator", None)
            return torch.empty(*args, **{**kwargs, "device": "meta"})
        if func in FACTORIES and kwargs.get("device") is None:
            made = func(*args, **{**kwargs, "device": "meta"})
            return made if made.is_floating_point() or made.is_complex() else func(*args, **kwargs)
        tensors = [value for value in (*args, *kwargs.values()) if isinstance(value, Tensor)]
        if not tensors or not all(t.is_meta for t in tensors):
            return func(*args, **kwargs)
        if func in RANDOM_FILLS or func in ELEMENTWISE_IN_PLACE or getattr(func, "__module__", None) == "torch.nn.init":
            # nn.init passes its tensor by keyword when it defers to a mode, Tensor methods by position.
            return tensors[0]
        if func in ELEMENTWISE:
            return _elementwise_on_meta(func, args, kwargs)
        return func(*args, **kwargs)


def _elementwise_on_meta(func, args: tuple, kwargs: dict) -> Tensor:
    """An empty meta tensor of ``func``'s broadcast shape and of the dtype torch gives its result.

    The dtype comes from running ``func`` on one-element CPU tensors of ones (no integer division
    by zero), so every promotion rule (integer true division, ``alpha`` ...) is torch's own.
    """

    def one(value):
        return torch.ones((), dtype=value.dtype, device="cpu") if isinstance(value, Tensor) else value

    dtype = func(*map(one, args), **{key: one(value) for key, value in kwargs.items()}).dtype
    shapes = [tuple(value.shape) for value in (*args, *kwargs.values()) if isinstance(value, Tensor)]
    return torch.empty(_broadcast(shapes), dtype=dtype, device="meta")


def _broadcast(shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """The broadcast of ``shapes`` (``torch.broadcast_shapes`` imports sympy, 0.5 s, on first use)."""
    rank = max(len(shape) for shape in shapes)
    padded = [(1,) * (rank - len(shape)) + shape for shape in shapes]
    result = []
    for sizes in zip(*padded, strict=True):
        wanted = {size for size in sizes if size != 1} or {1}
        if len(wanted) > 1:
            raise ValueError(f"shapes {shapes} do not broadcast")
        result.append(wanted.pop())
    return tuple(result)


@contextmanager
def skip_initialisation() -> Iterator[None]:
    """Construct modules with meta floating-point tensors, without initialisers or arithmetic on them."""
    with _SkipInitialisation():
        yield
