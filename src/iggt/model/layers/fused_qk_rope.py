"""The trunk attention's QK-norm and 2D RoPE in one pass on CUDA (a Triton kernel), for inference.

Eager, :meth:`Attention.project` reads the QKV projection's bf16 output, writes float32 queries and
keys from the LayerNorms (autocast runs layer_norm in float32), rotates each with about eight
elementwise kernels, and the attention kernel then rounds them to bf16 and copies the strided values:
some ten passes over (B, N, dim) tensors per block. Here one program per token reads its queries, keys
and values once, normalises and rotates in float32 registers in the eager code's order of operations,
and writes bf16 queries and keys and contiguous values: what the attention kernel received before,
within one bf16 rounding step where the two paths' float32 sums differ in their last bits.

It runs only where it computes that same thing (:func:`fusion_applies`): CUDA, no gradients, the
trunk under bf16 or fp16 autocast, LayerNorm QK-norm with RoPE, a power-of-two head dim, Triton
importable. ``IGGT_FUSED_QK_ROPE=0`` or :func:`fused_qk_rope` (False) turns it off for comparisons.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

from iggt.model.layers.kernel_switch import KernelSwitch, lazy_triton_kernel
from iggt.model.layers.rope import RotaryPositionEmbedding2D

FUSED_DTYPES = (torch.bfloat16, torch.float16)

SWITCH = KernelSwitch("IGGT_FUSED_QK_ROPE")


def fused_qk_rope(enabled: bool) -> contextlib.AbstractContextManager[None]:
    """Allow (True) or forbid (False) the fused kernel for the enclosed calls."""
    return SWITCH.override(enabled)


def fusion_enabled() -> bool:
    """The innermost :func:`fused_qk_rope`, else ``IGGT_FUSED_QK_ROPE`` (default on)."""
    return SWITCH.enabled()


@lazy_triton_kernel
def _kernel(triton, tl):
    """The Triton kernel, built from the imported ``triton`` and ``triton.language``."""

    @triton.jit
    def qk_norm_rope_kernel(
        qkv_ptr, positions_ptr, inverse_frequency_ptr, norm_weight_ptr, norm_bias_ptr, qk_out_ptr, v_out_ptr,
        tokens, heads, qk_out_stride, position_batch_stride, position_token_stride, eps,
        HEADS_BLOCK: tl.constexpr, HEAD_DIM: tl.constexpr,
    ):  # fmt: skip
        # batch * tokens + token, in int64: row * 3 * dim passes 2 ** 31 beyond 699 k tokens of
        # width 1024 (1,000 frames at 336 x 504 are 869 k), and int32 offsets would wrap there.
        row = tl.program_id(0).to(tl.int64)
        batch, token = row // tokens, row % tokens
        head = tl.arange(0, HEADS_BLOCK)[:, None]
        channel = tl.arange(0, HEAD_DIM)[None, :]
        quarter: tl.constexpr = HEAD_DIM // 4
        # The first half of a head rotates with the row position, the second with the column;
        # within a half, channel i pairs with i + quarter, negated in the first quarter (rope.py).
        partner = channel ^ quarter
        sign = tl.where((channel & quarter) == 0, -1.0, 1.0)
        position = tl.load(
            positions_ptr + batch * position_batch_stride + token * position_token_stride + channel // (2 * quarter)
        ).to(tl.float32)
        angle = position * tl.load(inverse_frequency_ptr + channel % quarter)
        cos, sin = tl.cos(angle), tl.sin(angle)
        mask = (head < heads) & (channel < HEAD_DIM)
        dim = heads * HEAD_DIM
        offsets = head * HEAD_DIM + channel
        partner_offsets = head * HEAD_DIM + partner
        source = qkv_ptr + row * 3 * dim
        target = row * dim + offsets
        for part in tl.static_range(2):  # queries, then keys: the same LayerNorm + RoPE, own weights
            x = tl.load(source + part * dim + offsets, mask=mask, other=0.0).to(tl.float32)
            x_partner = tl.load(source + part * dim + partner_offsets, mask=mask, other=0.0).to(tl.float32)
            mean = tl.sum(x, axis=1)[:, None] / HEAD_DIM
            centred = tl.where(mask, x - mean, 0.0)
            inverse_std = 1.0 / tl.sqrt(tl.sum(centred * centred, axis=1)[:, None] / HEAD_DIM + eps)
            weight = tl.load(norm_weight_ptr + part * HEAD_DIM + channel)
            bias = tl.load(norm_bias_ptr + part * HEAD_DIM + channel)
            partner_weight = tl.load(norm_weight_ptr + part * HEAD_DIM + partner)
            partner_bias = tl.load(norm_bias_ptr + part * HEAD_DIM + partner)
            normed = centred * inverse_std * weight + bias
            normed_partner = (x_partner - mean) * inverse_std * partner_weight + partner_bias
            rotated = normed * cos + (sign * normed_partner) * sin
            out = qk_out_ptr + part * qk_out_stride + target
            tl.store(out, rotated.to(qk_out_ptr.dtype.element_ty), mask=mask)
        tl.store(v_out_ptr + target, tl.load(source + 2 * dim + offsets, mask=mask), mask=mask)

    return qk_norm_rope_kernel


def affine_layer_norm(norm: nn.Module) -> bool:
    """A LayerNorm with weight and bias: the only QK-norm the kernel computes."""
    return isinstance(norm, nn.LayerNorm) and norm.weight is not None and norm.bias is not None


def fusion_applies(
    qkv: Tensor,
    q_norm: nn.Module,
    k_norm: nn.Module,
    rope: RotaryPositionEmbedding2D | None,
    positions: Tensor | None,
    head_dim: int,
) -> bool:
    """True where :func:`qk_norm_rope` computes what the eager path hands the attention kernel."""
    device_type = qkv.device.type
    return (
        device_type == "cuda"
        and fusion_enabled()
        and not (torch.is_grad_enabled() and qkv.requires_grad)
        and torch.is_autocast_enabled(device_type)
        and qkv.dtype in FUSED_DTYPES
        and torch.get_autocast_dtype(device_type) == qkv.dtype
        and rope is not None
        and positions is not None
        and affine_layer_norm(q_norm)
        and affine_layer_norm(k_norm)
        and q_norm.eps == k_norm.eps
        and head_dim >= 4
        and head_dim & (head_dim - 1) == 0
        and qkv.is_contiguous()
        and _kernel() is not None
    )


def qk_norm_rope(
    qkv: Tensor,
    positions: Tensor,
    q_norm: nn.LayerNorm,
    k_norm: nn.LayerNorm,
    rope: RotaryPositionEmbedding2D,
    num_heads: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """(B, N, 3 * heads * D) projections and (B, N, 2) positions -> queries, keys and values, each
    (B, N, heads, D) contiguous in ``qkv``'s dtype: queries and keys normed and rotated."""
    batch, tokens, width = qkv.shape
    head_dim = width // (3 * num_heads)
    query_key = torch.empty(2, batch, tokens, num_heads, head_dim, dtype=qkv.dtype, device=qkv.device)
    value = torch.empty(batch, tokens, num_heads, head_dim, dtype=qkv.dtype, device=qkv.device)
    # The eager path's own float32 rates, so the angles match it bit for bit.
    inverse_frequency = rope.inverse_frequency(head_dim // 2, qkv.device)
    positions = positions.to(torch.int32)
    weight = torch.stack([q_norm.weight, k_norm.weight]).float()
    bias = torch.stack([q_norm.bias, k_norm.bias]).float()
    _kernel()[(batch * tokens,)](
        qkv, positions, inverse_frequency, weight, bias, query_key, value,
        tokens, num_heads, query_key.stride(0), positions.stride(0), positions.stride(1), q_norm.eps,
        HEADS_BLOCK=max(1, 1 << (num_heads - 1).bit_length()), HEAD_DIM=head_dim,
    )  # fmt: skip
    query, key = query_key.unbind(0)
    return query, key, value
