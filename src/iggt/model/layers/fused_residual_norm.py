"""A trunk block's residual adds, layer scales and LayerNorms in one pass each on CUDA (Triton), for inference.

Eager, under autocast a block runs on its float32 residual stream ``x`` (N, dim):
``norm1(x)`` writes float32 (autocast keeps layer_norm in float32) and the QKV projection reads it
back to round it to bf16; ``x + ls1(attn)`` is a multiply and an add, each a full float32 pass; then
``norm2`` and its rounding again, and ``x + ls2(mlp)`` as two more passes. At 100 frames at 518 x 518
these passes over 137 k tokens are most of the trunk's time that is neither attention nor a matrix
product (benchmarks/results/forward_profile_h200.json). Here one program per token does, in float32
registers and the eager order of operations:

- :func:`layer_norm`: ``norm(x)``, written in the autocast dtype the next projection reads;
- :func:`add_scaled_then_norm`: ``x + gamma * y``, written in float32, and its ``norm``, written in
  the autocast dtype;
- :func:`add_scaled`: ``x + gamma * y`` alone.

The float32 stream is the same as eager to float32 rounding (a multiply-add may be contracted); the
normed values are within one bf16 rounding step of eager's. It runs only where it computes that
(:func:`fusion_applies`): CUDA, no gradients, bf16 or fp16 autocast, an affine LayerNorm, float32
contiguous rows, Triton importable.

On by default (``IGGT_FUSED_RESIDUAL_NORM=0`` or :func:`fused_residual_norm` (False) turns it off):
its GPU tests passed on an H100 and an H200 (2026-12-06; the whole model's error against float32
is eager's own), and on the H100 it took the trunk at 100 frames at 518 x 518 from 4.25 to 4.09 s
(docs/performance.md).
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

from iggt.model.layers.fused_qk_rope import affine_layer_norm
from iggt.model.layers.kernel_switch import KernelSwitch, compute_dtype, lazy_triton_kernel

FUSED_DTYPES = (torch.bfloat16, torch.float16)
MAX_DIM = 8192
"""Widest row one program holds in registers; every preset is at most 1024."""

SWITCH = KernelSwitch("IGGT_FUSED_RESIDUAL_NORM")


def fused_residual_norm(enabled: bool) -> contextlib.AbstractContextManager[None]:
    """Allow (True) or forbid (False) the fused residual / norm kernel for the enclosed calls."""
    return SWITCH.override(enabled)


@lazy_triton_kernel
def _kernel(triton, tl):
    """The Triton kernel, built from the imported ``triton`` and ``triton.language``."""

    @triton.jit
    def residual_norm_kernel(
        x_ptr, y_ptr, gamma_ptr, weight_ptr, bias_ptr, x_out_ptr, normed_ptr, dim, eps,
        BLOCK: tl.constexpr, ADD: tl.constexpr, SCALE: tl.constexpr, NORM: tl.constexpr,
    ):  # fmt: skip
        # int64 rows: tokens * dim passes 2 ** 31 elements at 1,000 frames of `large`.
        start = tl.program_id(0).to(tl.int64) * dim
        column = tl.arange(0, BLOCK)
        mask = column < dim
        x = tl.load(x_ptr + start + column, mask=mask, other=0.0).to(tl.float32)
        if ADD:
            y = tl.load(y_ptr + start + column, mask=mask, other=0.0).to(tl.float32)
            if SCALE:
                y = y * tl.load(gamma_ptr + column, mask=mask, other=0.0).to(tl.float32)
            x = x + y
            tl.store(x_out_ptr + start + column, x, mask=mask)
        if NORM:
            mean = tl.sum(x, axis=0) / dim
            centred = tl.where(mask, x - mean, 0.0)
            inverse_std = 1.0 / tl.sqrt(tl.sum(centred * centred, axis=0) / dim + eps)
            weight = tl.load(weight_ptr + column, mask=mask, other=0.0).to(tl.float32)
            bias = tl.load(bias_ptr + column, mask=mask, other=0.0).to(tl.float32)
            normed = centred * inverse_std * weight + bias
            tl.store(normed_ptr + start + column, normed.to(normed_ptr.dtype.element_ty), mask=mask)

    return residual_norm_kernel


def fusion_applies(x: Tensor, *norms: nn.Module) -> bool:
    """True where the kernels compute what the eager block does to the (..., dim) stream ``x``."""
    device_type = x.device.type
    return (
        device_type == "cuda"
        and SWITCH.enabled()
        and not (torch.is_grad_enabled() and x.requires_grad)
        and torch.is_autocast_enabled(device_type)
        and torch.get_autocast_dtype(device_type) in FUSED_DTYPES
        and x.dtype == torch.float32
        and x.is_contiguous()
        and x.shape[-1] <= MAX_DIM
        and all(affine_layer_norm(norm) and tuple(norm.normalized_shape) == (x.shape[-1],) for norm in norms)
        and _kernel() is not None
    )


def _launch(
    x: Tensor,
    y: Tensor | None,
    gamma: Tensor | None,
    norm: nn.LayerNorm | None,
    out_dtype: torch.dtype | None,
) -> tuple[Tensor | None, Tensor | None]:
    if y is not None and y.shape != x.shape:
        raise ValueError(f"the residual {tuple(x.shape)} and its branch {tuple(y.shape)} differ in shape")
    dim = x.shape[-1]
    rows = x.numel() // dim
    x_out = torch.empty_like(x) if y is not None else None
    normed = torch.empty(x.shape, dtype=out_dtype, device=x.device) if norm is not None else None
    dummy = x  # pointer arguments the kernel's constexpr flags never read
    if y is not None and not y.is_contiguous():
        y = y.contiguous()
    _kernel()[(rows,)](
        x, dummy if y is None else y, dummy if gamma is None else gamma,
        dummy if norm is None else norm.weight, dummy if norm is None else norm.bias,
        dummy if x_out is None else x_out, dummy if normed is None else normed,
        dim, 0.0 if norm is None else norm.eps,
        BLOCK=max(16, 1 << (dim - 1).bit_length()), ADD=y is not None, SCALE=gamma is not None,
        NORM=norm is not None, num_warps=4 if dim <= 1024 else 8,
    )  # fmt: skip
    return x_out, normed


def layer_norm(x: Tensor, norm: nn.LayerNorm, out_dtype: torch.dtype | None = None) -> Tensor:
    """``norm(x)`` of (..., dim) float32 ``x``, in ``out_dtype`` (default: the autocast dtype)."""
    return _launch(x, None, None, norm, out_dtype or compute_dtype(x))[1]


def add_scaled_then_norm(
    x: Tensor, y: Tensor, gamma: Tensor | None, norm: nn.LayerNorm, out_dtype: torch.dtype | None = None
) -> tuple[Tensor, Tensor]:
    """``x + gamma * y`` (float32; ``gamma`` None: ``x + y``) and its ``norm`` in ``out_dtype``
    (default: the autocast dtype); ``x`` (..., dim) float32, ``y`` the same shape in any float dtype."""
    return _launch(x, y, gamma, norm, out_dtype or compute_dtype(x))


def add_scaled(x: Tensor, y: Tensor, gamma: Tensor | None) -> Tensor:
    """``x + gamma * y`` in float32 (``gamma`` None: ``x + y``); shapes as :func:`add_scaled_then_norm`."""
    return _launch(x, y, gamma, None, None)[0]
