"""Building a network whose weights a checkpoint is about to replace: no random initialisation.

:meth:`iggt.model.iggt.IGGT.from_state_dict` builds the modules inside :func:`skip_initialisation`
and then adopts the checkpoint's tensors, so the random numbers the constructors would draw are
never made. The modules are built on the CPU, not on torch's meta device: torch computes random
and arithmetic ops on meta tensors with Python reference kernels whose first call imports
``torch._dynamo`` (1.3-3 s on the 2-core CPU, more than the rest of the load), whereas an
uninitialised CPU tensor is one untouched allocation. A module the checkpoint leaves incomplete is
rebuilt with its real initialisation (``IGGT._rebuild_missing``), so no uninitialised value survives
a load.

The load runs on one thread (:func:`one_thread`): it is hundreds of small tensor ops (the
finiteness check, the bfloat16 -> float32 conversions), each of which a second thread only makes
wait for it, and on a busy 2-core machine that wait grew the example model's load from 0.1 s to
3 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

INITIALISERS = frozenset(
    {
        torch.Tensor.normal_,
        torch.Tensor.uniform_,
        nn.init.normal_,
        nn.init.trunc_normal_,
        nn.init.uniform_,
        nn.init.kaiming_uniform_,
        nn.init.kaiming_normal_,
        nn.init.xavier_uniform_,
        nn.init.xavier_normal_,
        nn.init.zeros_,
        nn.init.ones_,
        nn.init.constant_,
    }
)
"""In-place initialisers the constructors call; skipped, they return their tensor as it is."""
RANDOM_FACTORIES = frozenset({torch.randn, torch.rand})
"""Factories of random tensors; replaced by ``torch.empty`` of the same shape and options."""


class _SkipInitialisation(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in RANDOM_FACTORIES:
            return torch.empty(*args, **kwargs)
        if func in INITIALISERS:
            # nn.init passes its tensor by keyword when it defers to a mode, Tensor methods by position.
            return next(value for value in (*args, *kwargs.values()) if isinstance(value, torch.Tensor))
        return func(*args, **kwargs)


@contextmanager
def skip_initialisation() -> Iterator[None]:
    """Construct modules on the CPU with uninitialised parameters (every value is to be replaced)."""
    with torch.device("cpu"), _SkipInitialisation():
        yield


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch's CPU ops on one thread inside the block; the caller's thread count after it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
