"""The heads' token LayerNorms, with the residual adds before them, in one pass (Triton).

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

The dense heads and the instance adaptor normalise the trunk's patch tokens (1,024 channels) with the
same kernel, reading them where they lie in the (B*S, P, dim) layers, past each frame's special tokens.

Operands may be float32 or, under autocast (the float16 and bfloat16 heads), mixed: the residual
stream is float32 while the branches come out of matrix products in the autocast dtype. The kernel
then computes what eager does there: reduced operands are widened exactly, ``scale * z`` is rounded
to ``z``'s dtype as eager's product is, the sum and the norm are float32 (autocast runs LayerNorm
in float32). Where the caller says the normed rows feed only matrix products or convolutions
(``for_products``), which autocast would round to its dtype on entry, they are written in that
dtype: the values autocast's cast gives, without the float32 copy and each consumer's cast.

The results differ from eager's only in float32 rounding (the variance is summed in another order,
a multiply-add may be contracted). :func:`normalize` and :func:`add_and_normalize` run the kernel
where it applies (:func:`fusion_applies`: CUDA or Triton's CPU interpreter, no gradient recorded,
contiguous rows of one shape whose eager sum is float32 (a lone ``x`` may also be (G, L, dim) with
dense rows in each group, as the dense heads slice patch tokens from the trunk's), an affine float32
LayerNorm over the last dimension) and the eager modules elsewhere. On by default; ``IGGT_FUSED_TOKEN_NORM=0`` or
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


REDUCED = (torch.float16, torch.bfloat16)
OPERAND_DTYPES = (torch.float32, *REDUCED)


@lazy_triton_kernel
def _kernel(triton, tl):
    """The Triton kernel, built from the imported ``triton`` and ``triton.language``."""

    @triton.jit
    def token_norm_kernel(
        x_ptr, y_ptr, z_ptr, weight_ptr, bias_ptr, sum_ptr, normed_ptr, rows, dim, z_scale, eps,
        group_rows, group_stride,
        ROWS: tl.constexpr, BLOCK: tl.constexpr, BRANCHES: tl.constexpr, STORE_SUM: tl.constexpr,
        ROUND_Z: tl.constexpr,
    ):  # fmt: skip
        row = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)
        column = tl.arange(0, BLOCK)
        column_mask = column < dim
        mask = (row < rows)[:, None] & column_mask[None, :]
        offsets = row[:, None] * dim + column[None, :]
        # x's rows come in groups of group_rows dense rows, group_stride elements apart (a dense x: one group)
        x_row = (row // group_rows) * group_stride + (row % group_rows) * dim
        x = tl.load(x_ptr + x_row[:, None] + column[None, :], mask=mask, other=0.0).to(tl.float32)
        if BRANCHES >= 1:
            x = x + tl.load(y_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
        if BRANCHES >= 2:
            z = tl.load(z_ptr + offsets, mask=mask, other=0.0)
            scaled = z.to(tl.float32) * z_scale
            if ROUND_Z:  # eager's ``z * scale`` of a float16 / bfloat16 z is rounded to z's dtype
                scaled = scaled.to(z.dtype).to(tl.float32)
            x = x + scaled
        if STORE_SUM:
            tl.store(sum_ptr + offsets, x, mask=mask)
        mean = tl.sum(x, axis=1) / dim
        centred = tl.where(mask, x - mean[:, None], 0.0)
        inverse_std = 1.0 / tl.sqrt(tl.sum(centred * centred, axis=1) / dim + eps)
        weight = tl.load(weight_ptr + column, mask=column_mask, other=0.0)
        bias = tl.load(bias_ptr + column, mask=column_mask, other=0.0)
        normed = centred * inverse_std[:, None] * weight[None, :] + bias[None, :]
        tl.store(normed_ptr + offsets, normed.to(normed_ptr.dtype.element_ty), mask=mask)

    return token_norm_kernel


def _sums_like_eager(tensors: tuple[Tensor, ...]) -> bool:
    """Whether eager's ``norm(x + y + z * scale)`` of these operands is the kernel's float32 arithmetic:
    all float32, or under CUDA autocast (whose LayerNorm widens its input to float32; the CPU's runs
    in the input's dtype) a lone operand of any dtype, or branches whose first sum ``x + y`` is
    already float32 (two reduced operands would be added and rounded in their own dtype first)."""
    if any(t.dtype not in OPERAND_DTYPES for t in tensors):
        return False
    if all(t.dtype == torch.float32 for t in tensors):
        return True
    if tensors[0].device.type != "cuda" or not torch.is_autocast_enabled("cuda"):
        return False
    return len(tensors) == 1 or torch.float32 in (tensors[0].dtype, tensors[1].dtype)


def fusion_applies(x: Tensor, norm: nn.Module, *branches: Tensor) -> bool:
    """True where the kernel computes what ``norm(x + branches...)`` does eagerly to (..., dim) ``x``."""
    tensors = (x, *branches)
    return (
        triton_can_run(x)
        and SWITCH.enabled()
        and not (torch.is_grad_enabled() and any(t.requires_grad for t in (*tensors, *norm.parameters())))
        and (x.is_contiguous() or (not branches and _row_groups(x) is not None))
        and all(t.shape == x.shape and t.is_contiguous() for t in branches)
        and _sums_like_eager(tensors)
        and 0 < x.shape[-1] <= MAX_DIM
        and affine_layer_norm(norm)
        and tuple(norm.normalized_shape) == (x.shape[-1],)
        and norm.weight.dtype == torch.float32
        and _kernel() is not None
    )


def _row_groups(x: Tensor) -> tuple[int, int] | None:
    """(rows per group, elements between groups) of a (G, L, dim) ``x`` whose rows are dense within
    each group, as slicing the patch tokens out of (B*S, P, dim) trunk tokens leaves them; else None."""
    if x.dim() != 3 or x.stride(-1) != 1 or x.stride(1) != x.shape[-1]:
        return None
    return x.shape[1], x.stride(0)


def normed_dtype(x: Tensor, for_products: bool) -> torch.dtype:
    """The dtype the kernel writes normed rows in: autocast's where they feed only products under it."""
    device = x.device.type
    if for_products and torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return torch.float32


def _launch(
    x: Tensor,
    y: Tensor | None,
    z: Tensor | None,
    scale: float,
    norm: nn.LayerNorm,
    keep_sum: bool,
    for_products: bool,
):
    dim = x.shape[-1]
    rows = x.numel() // dim
    block = max(16, 1 << (dim - 1).bit_length())
    per_program = max(1, ROW_ELEMENTS // block)
    total = torch.empty(x.shape, dtype=torch.float32, device=x.device) if keep_sum else None
    normed = torch.empty(x.shape, dtype=normed_dtype(x, for_products), device=x.device)
    branches = 0 if y is None else 2 if z is not None else 1
    group_rows, group_stride = (rows, rows * dim) if x.is_contiguous() else _row_groups(x)
    _kernel()[(-(-rows // per_program),)](
        x, x if y is None else y, x if z is None else z, norm.weight, norm.bias,
        normed if total is None else total, normed, rows, dim, float(scale), float(norm.eps),
        group_rows, group_stride, ROWS=per_program, BLOCK=block, BRANCHES=branches, STORE_SUM=keep_sum,
        ROUND_Z=z is not None and z.dtype in REDUCED, num_warps=4,
    )  # fmt: skip
    return total, normed


def layer_norm(x: Tensor, norm: nn.LayerNorm, for_products: bool = False) -> Tensor:
    """``norm(x)`` of (..., dim) ``x``; the caller checks :func:`fusion_applies`."""
    return _launch(x, None, None, 1.0, norm, keep_sum=False, for_products=for_products)[1]


def add_then_norm(
    x: Tensor,
    y: Tensor,
    norm: nn.LayerNorm,
    z: Tensor | None = None,
    scale: float = 1.0,
    keep_sum: bool = True,
    for_products: bool = False,
) -> tuple[Tensor | None, Tensor]:
    """``s = (x + y) + scale * z`` (``z`` None: ``x + y``) and ``norm(s)``, all (..., dim); ``s``
    (float32) is None unless ``keep_sum``. The caller checks :func:`fusion_applies`."""
    if y.shape != x.shape or (z is not None and z.shape != x.shape):
        raise ValueError(f"the residual {tuple(x.shape)} and its branches differ in shape")
    return _launch(x, y, z, scale, norm, keep_sum, for_products)


def normalize(x: Tensor, norm: nn.LayerNorm, for_products: bool = False) -> Tensor:
    """``norm(x)``, by the kernel where it applies. ``for_products``: every use of the result is a
    matrix product or convolution, so under autocast it may come in autocast's dtype."""
    return layer_norm(x, norm, for_products) if fusion_applies(x, norm) else norm(x)


def add_and_normalize(
    x: Tensor,
    y: Tensor,
    norm: nn.LayerNorm,
    z: Tensor | None = None,
    scale: float = 1.0,
    keep_sum: bool = True,
    for_products: bool = False,
) -> tuple[Tensor | None, Tensor]:
    """``s = x + y + z * scale`` (eager order; ``z`` None: ``x + y``) and ``norm(s)``, by the kernel
    where it applies; ``s`` is None unless ``keep_sum``, ``for_products`` as :func:`normalize`'s."""
    branches = (y,) if z is None else (y, z)
    if fusion_applies(x, norm, *branches):
        return add_then_norm(x, y, norm, z, scale, keep_sum, for_products)
    total = x + y if z is None else x + y + z * scale
    return (total if keep_sum else None), norm(total)
