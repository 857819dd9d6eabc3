"""The instance head's float32 token LayerNorms, with the residual adds before them, in one pass (Triton).

The instance head's window refiners normalise narrow tokens on fine grids: 128 channels on the 8x
grid (12 frames at 518 x 518: 1.05 M rows) and 256 on the 4x grid. PyTorch's LayerNorm kernel
gives each such row too little work and ran these at about a fifth of the H100's bandwidth (1.6 ms
for a 0.54 GB grid, forward_profile_h100_fused_epilogues.json), and the hybrid block's residual
sum ``tokens + attended + 0.01 * conv`` was three more passes before its second norm. Here one
program takes :data:`ROW_ELEMENTS` values' worth of rows and, in float32 registers and the eager
order of operations, adds the branches, writes the sum (when the caller needs it) and writes the
normalised rows:

- :func:`layer_norm`: ``norm(x)``;
- :func:`add_then_norm`: ``s = (x + y) + scale * z`` (``z`` optional) and ``norm(s)``.

Unlike the trunk's kernels (:mod:`iggt.model.layers.fused_residual_norm`: one wide row per program,
the normed rows in the autocast dtype) everything here is float32 in and out, as the float32 heads
compute it; the results differ from eager's only in float32 rounding (the variance is summed in
another order, a multiply-add may be contracted). :func:`normalize` and :func:`add_and_normalize`
run the kernel where it applies (:func:`fusion_applies`: CUDA or Triton's CPU interpreter, no
gradient recorded, float32 contiguous rows of one shape, an affine LayerNorm over the last
dimension) and the eager modules elsewhere. On by default; ``IGGT_FUSED_TOKEN_NORM=0`` or
:func:`fused_token_norm` (False) turns it off.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

from iggt.model.layers.fused_qk_rope import affine_layer_norm
from iggt.model.layers.kernel_switch import KernelSwitch, lazy_triton_kernel, triton_can_run

SWITCH = KernelSwitch("IGGT_FUSED_TOKEN_NORM")
ROW_ELEMENTS = 4096
"""Values one program holds (rows x the row's power-of-two width): 32 rows of 128 channels."""
MAX_DIM = 4096
"""Widest row the kernel takes; the instance head's are 128 and 256."""


def fused_token_norm(enabled: bool) -> contextlib.AbstractContextManager[None]:
    """Allow (True) or forbid (False) the fused token norms for the enclosed calls."""
    return SWITCH.override(enabled)


@lazy_triton_kernel
def _kernel(triton, tl):
    """The Triton kernel, built from the imported ``triton`` and ``triton.language``."""

    @triton.jit
    def token_norm_kernel(
        x_ptr, y_ptr, z_ptr, weight_ptr, bias_ptr, sum_ptr, normed_ptr, rows, dim, z_scale, eps,
        ROWS: tl.constexpr, BLOCK: tl.constexpr, BRANCHES: tl.constexpr, STORE_SUM: tl.constexpr,
    ):  # fmt: skip
        row = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)
        column = tl.arange(0, BLOCK)
        column_mask = column < dim
        mask = (row < rows)[:, None] & column_mask[None, :]
        offsets = row[:, None] * dim + column[None, :]
        x = tl.load(x_ptr + offsets, mask=mask, other=0.0)
        if BRANCHES >= 1:
            x = x + tl.load(y_ptr + offsets, mask=mask, other=0.0)
        if BRANCHES >= 2:
            x = x + tl.load(z_ptr + offsets, mask=mask, other=0.0) * z_scale
        if STORE_SUM:
            tl.store(sum_ptr + offsets, x, mask=mask)
        mean = tl.sum(x, axis=1) / dim
        centred = tl.where(mask, x - mean[:, None], 0.0)
        inverse_std = 1.0 / tl.sqrt(tl.sum(centred * centred, axis=1) / dim + eps)
        weight = tl.load(weight_ptr + column, mask=column_mask, other=0.0)
        bias = tl.load(bias_ptr + column, mask=column_mask, other=0.0)
        normed = centred * inverse_std[:, None] * weight[None, :] + bias[None, :]
        tl.store(normed_ptr + offsets, normed, mask=mask)

    return token_norm_kernel


def fusion_applies(x: Tensor, norm: nn.Module, *branches: Tensor) -> bool:
    """True where the kernel computes what ``norm(x + branches...)`` does eagerly to (..., dim) ``x``."""
    tensors = (x, *branches)
    return (
        triton_can_run(x)
        and SWITCH.enabled()
        and not (torch.is_grad_enabled() and any(t.requires_grad for t in (*tensors, *norm.parameters())))
        and all(t.dtype == torch.float32 and t.shape == x.shape and t.is_contiguous() for t in tensors)
        and 0 < x.shape[-1] <= MAX_DIM
        and affine_layer_norm(norm)
        and tuple(norm.normalized_shape) == (x.shape[-1],)
        and norm.weight.dtype == torch.float32
        and _kernel() is not None
    )


def _launch(x: Tensor, y: Tensor | None, z: Tensor | None, scale: float, norm: nn.LayerNorm, keep_sum: bool):
    dim = x.shape[-1]
    rows = x.numel() // dim
    block = max(16, 1 << (dim - 1).bit_length())
    per_program = max(1, ROW_ELEMENTS // block)
    total = torch.empty_like(x) if keep_sum else None
    normed = torch.empty_like(x)
    branches = 0 if y is None else 2 if z is not None else 1
    _kernel()[(-(-rows // per_program),)](
        x, x if y is None else y, x if z is None else z, norm.weight, norm.bias,
        x if total is None else total, normed, rows, dim, float(scale), float(norm.eps),
        ROWS=per_program, BLOCK=block, BRANCHES=branches, STORE_SUM=keep_sum, num_warps=4,
    )  # fmt: skip
    return total, normed


def layer_norm(x: Tensor, norm: nn.LayerNorm) -> Tensor:
    """``norm(x)`` of (..., dim) float32 ``x``; the caller checks :func:`fusion_applies`."""
    return _launch(x, None, None, 1.0, norm, keep_sum=False)[1]


def add_then_norm(
    x: Tensor, y: Tensor, norm: nn.LayerNorm, z: Tensor | None = None, scale: float = 1.0, keep_sum: bool = True
) -> tuple[Tensor | None, Tensor]:
    """``s = (x + y) + scale * z`` (``z`` None: ``x + y``) and ``norm(s)``, all (..., dim) float32;
    ``s`` is None unless ``keep_sum``. The caller checks :func:`fusion_applies`."""
    if y.shape != x.shape or (z is not None and z.shape != x.shape):
        raise ValueError(f"the residual {tuple(x.shape)} and its branches differ in shape")
    return _launch(x, y, z, scale, norm, keep_sum)


def normalize(x: Tensor, norm: nn.LayerNorm) -> Tensor:
    """``norm(x)``, by the kernel where it applies."""
    return layer_norm(x, norm) if fusion_applies(x, norm) else norm(x)


def add_and_normalize(
    x: Tensor, y: Tensor, norm: nn.LayerNorm, z: Tensor | None = None, scale: float = 1.0
) -> tuple[Tensor, Tensor]:
    """``s = x + y + z * scale`` (eager order; ``z`` None: ``x + y``) and ``norm(s)``, by the kernel
    where it applies."""
    branches = (y,) if z is None else (y, z)
    if fusion_applies(x, norm, *branches):
        return add_then_norm(x, y, norm, z, scale)
    total = x + y if z is None else x + y + z * scale
    return total, norm(total)
