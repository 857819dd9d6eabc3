"""Which kernel computes softmax attention: FlashAttention-3 on Hopper when it is installed, else torch's SDPA.

FA3 (the optional ``iggt[fa3]`` extra, PyPI ``tokenspeed-fa3``, module ``flash_attn_interface``) runs at
about 1.3x torch's best SDPA kernel (cuDNN) at the trunk's shapes on an H200, but it is built for sm90
only, takes bfloat16 / float16, and has no backward pass. So it serves inference only: a call that needs
gradients, runs in float32, or is not on an sm90 GPU goes to SDPA. The choice is made per call from the
tensors, here and nowhere else; :func:`attention_backend` narrows it for a block of code (benchmarks,
comparisons, a user who wants torch's kernel), and the environment variable ``IGGT_ATTENTION`` (auto,
sdpa, fa3) sets the default for a process.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from iggt.errors import InputError
from iggt.model.layers.kernel_switch import compute_dtype
from iggt.model.layers.row_slices import map_row_slices

BACKENDS = ("auto", "sdpa", "fa3")
FA3_DTYPES = (torch.bfloat16, torch.float16)
FA3_HEAD_DIMS = (64, 128, 192, 256)
"""Head dims the tokenspeed-fa3 wheel is built for (its build disables 96); every preset uses 64."""
SDPA_MAX_BATCH = 32768
"""Most batch entries one SDPA call gets: cuDNN's and flash's kernels put the batch on a CUDA grid
axis, which stops at 65,535, and fail at 65,536 windows (benchmarks/results/attention_limits_cuda.json:
the instance head's window attention at 32 scenes of 8 views in training). A power of two below it."""

_requested: contextvars.ContextVar[str | None] = contextvars.ContextVar("iggt_attention_backend", default=None)


def check_backend(name: str) -> str:
    """``name`` if it is a backend name, else InputError naming the choices."""
    if name not in BACKENDS:
        raise InputError(f"unknown attention backend {name!r}; choose from {list(BACKENDS)}")
    return name


def requested_backend() -> str:
    """The backend asked for: the innermost :func:`attention_backend`, else ``IGGT_ATTENTION``, else auto."""
    name = _requested.get()
    return name if name is not None else check_backend(os.environ.get("IGGT_ATTENTION", "auto"))


@contextlib.contextmanager
def attention_backend(name: str) -> Iterator[None]:
    """Run the enclosed attention calls with backend ``name`` ("auto", "sdpa" or "fa3").

    "fa3" is a demand on the machine: where FA3 cannot run at all (no sm90 GPU, not installed)
    InputError says why instead of quietly measuring SDPA; calls FA3 does not serve on a machine
    where it runs (float32 ones such as the camera head's, ones needing gradients) still use SDPA.
    """
    token = _requested.set(check_backend(name))
    try:
        yield
    finally:
        _requested.reset(token)


@functools.cache
def fa3_function():
    """``flash_attn_interface.flash_attn_func``, or None when the package does not import."""
    try:
        from flash_attn_interface import flash_attn_func
    except Exception:  # ImportError, or a shared object built for another CUDA / torch
        return None
    return flash_attn_func


def fa3_installed() -> bool:
    """True when FlashAttention-3's Python interface imports."""
    return fa3_function() is not None


def fa3_machine_reason(device: torch.device) -> str | None:
    """Why FA3 cannot run on ``device`` at all (None when it can)."""
    if device.type != "cuda":
        return f"it runs on CUDA GPUs only, not {device.type}"
    major, _ = torch.cuda.get_device_capability(device)
    if major != 9:
        return f"it is built for Hopper (sm90) GPUs, this one is sm{major}x"
    if not fa3_installed():
        return "flash_attn_interface does not import (pip install 'iggt[fa3]')"
    return None


def _fa3_call_reason(dtype: torch.dtype, head_dim: int, needs_grad: bool) -> str | None:
    """Why FA3 cannot serve one call on a machine where it runs (None when it can)."""
    if dtype not in FA3_DTYPES:
        return f"it takes bfloat16 or float16, not {str(dtype).removeprefix('torch.')}"
    if head_dim not in FA3_HEAD_DIMS:
        return f"its build takes head dims {FA3_HEAD_DIMS}, not {head_dim}"
    if needs_grad:
        return "it has no backward pass (training uses SDPA)"
    return None


def select_backend(device: torch.device, dtype: torch.dtype, head_dim: int = 64, needs_grad: bool = False) -> str:
    """ "fa3" or "sdpa": the kernel an attention call with these properties runs under the current request."""
    requested = requested_backend()
    if requested == "sdpa":
        return "sdpa"
    machine = fa3_machine_reason(torch.device(device))
    if machine is not None and requested == "fa3":
        raise InputError(f"FlashAttention-3 was asked for but cannot run here: {machine}")
    if machine is None and _fa3_call_reason(dtype, head_dim, needs_grad) is None:
        return "fa3"
    return "sdpa"


def attend(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
    """Softmax attention (scale 1 / sqrt(head_dim)) of (B, L, heads, D) inputs -> (B, L, heads, D)."""
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value))
    # Under autocast QK-norm hands over float32 queries and keys; SDPA would run in the autocast dtype.
    dtype = compute_dtype(query)
    if select_backend(query.device, dtype, query.shape[-1], needs_grad) == "fa3":
        # No .contiguous(): FA3 reads any strides with a contiguous last dimension (its interface copies
        # only a tensor without one), so the unfused blocks' views into the QKV product go in as they are.
        return fa3_function()(*(t.to(dtype) for t in (query, key, value)))
    output = F.scaled_dot_product_attention(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2))
    return output.transpose(1, 2)


def batched_sdpa(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None) -> Tensor:
    """``F.scaled_dot_product_attention`` of (N, heads, L, D) inputs in slices of at most
    :data:`SDPA_MAX_BATCH` along N (a mask with N rows is sliced with them; one of a single row is
    shared), so that every kernel SDPA may pick can take each slice. Same result as one call."""
    per_row = attn_mask is not None and attn_mask.dim() == query.dim() and attn_mask.shape[0] == query.shape[0]
    if per_row:
        return map_row_slices(F.scaled_dot_product_attention, SDPA_MAX_BATCH, query, key, value, attn_mask)
    shared = functools.partial(F.scaled_dot_product_attention, attn_mask=attn_mask)
    return map_row_slices(shared, SDPA_MAX_BATCH, query, key, value)
