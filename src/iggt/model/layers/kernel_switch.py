"""On/off switches of the fused inference kernels, for comparisons against the eager path, where
Triton kernels can run, the dtype an op computes in, and how each kernel module builds its kernel.

A kernel's environment variable set to ``0`` or ``1`` turns it off or on for a process (unset: its
default), and :meth:`KernelSwitch.override` sets it for the enclosed calls (innermost wins).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

SWITCHES: dict[str, KernelSwitch] = {}
"""Every switch made, by environment variable (each kernel module makes its own when imported)."""


def switch_states() -> dict[str, bool]:
    """Whether each fused kernel may run here and now, by environment variable: what a benchmark records."""
    return {env: switch.enabled() for env, switch in sorted(SWITCHES.items())}


class KernelSwitch:
    """Whether one fused kernel may run: ``override`` if inside one, else ``env``, else ``default``."""

    def __init__(self, env: str, default: bool = True) -> None:
        self.env = env
        self.default = default
        self._override: contextvars.ContextVar[bool | None] = contextvars.ContextVar(env, default=None)
        SWITCHES[env] = self

    def enabled(self) -> bool:
        override = self._override.get()
        if override is not None:
            return override
        value = os.environ.get(self.env)
        return self.default if value is None else value != "0"

    @contextlib.contextmanager
    def override(self, enabled: bool) -> Iterator[None]:
        """Allow (True) or forbid (False) the kernel for the enclosed calls."""
        token = self._override.set(enabled)
        try:
            yield
        finally:
            self._override.reset(token)


def triton_can_run(x: Tensor) -> bool:
    """Whether a Triton kernel can take ``x``: on CUDA, or on the CPU under Triton's interpreter
    (``TRITON_INTERPRET=1``, which the kernels' tests use)."""
    return x.device.type == "cuda" or (x.device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1")


def compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype an autocast-eligible op on ``x`` computes in: autocast's for ``x``'s device where it is
    on, else ``x``'s own (what decides whether a bf16 / fp16 kernel may stand in for it)."""
    return torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else x.dtype


def lazy_triton_kernel(build: Callable) -> Callable:
    """``build(triton, triton.language)`` -> a jitted kernel, turned into a function that builds it on
    its first call and returns it, or None where Triton does not import (the fused paths then stand
    aside), so that no kernel module imports Triton before one of its kernels is asked for."""

    @functools.cache
    def kernel():
        try:
            import triton
            import triton.language as tl
        except Exception:  # ImportError, or a Triton built for another torch
            return None
        return build(triton, tl)

    return functools.wraps(build)(kernel)
