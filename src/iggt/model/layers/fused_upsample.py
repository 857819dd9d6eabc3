"""Bilinear upsampling (aligned corners) of channels-last maps on CUDA (Triton), optionally adding a
per-pixel map in the same pass, for the heads' inference.

Every DPT head ends by resizing its 8x-grid features (128 channels) to the full image and adding
the uv embedding to them: at 518 x 518 a map of 1.65 GB per 12 frames in float32, written by
PyTorch's NHWC bilinear kernel and then read and written again by the embedding's add. In the H100
profile of the float32 heads (forward_profile_h100_heads.json) the bilinear kernels are the largest
single kernel of every head. Here one program takes a block of output pixels and of channels,
reads the four source pixels' channel rows (contiguous in channels-last memory), blends them with
PyTorch's own source-index and weight arithmetic in float32, adds the optional map and writes
once.

:func:`upsample_bilinear` runs only where it computes that (:func:`upsample_applies`): CUDA (or
Triton's CPU interpreter, for the tests), no gradient recorded, a channels-last input, Triton
importable; elsewhere ``F.interpolate`` (and the add) run. On by default;
``IGGT_FUSED_UPSAMPLE=0`` or :func:`fused_upsample` (False) turns it off.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from iggt.model.layers.kernel_switch import KernelSwitch, lazy_triton_kernel, triton_can_run

SWITCH = KernelSwitch("IGGT_FUSED_UPSAMPLE")
DTYPES = (torch.float32, torch.bfloat16, torch.float16)
BLOCK_PIXELS = 32


def fused_upsample(enabled: bool) -> contextlib.AbstractContextManager[None]:
    """Allow (True) or forbid (False) the upsampling kernel for the enclosed calls."""
    return SWITCH.override(enabled)


@lazy_triton_kernel
def _kernel(triton, tl):
    """The Triton kernel, built from the imported ``triton`` and ``triton.language``."""

    @triton.jit
    def upsample_kernel(
        x_ptr, add_ptr, out_ptr, pixels, in_height, in_width, out_height, out_width, channels,
        scale_height, scale_width,
        BLOCK_PIXELS: tl.constexpr, BLOCK_CHANNELS: tl.constexpr, ADD: tl.constexpr,
    ):  # fmt: skip
        # int64 throughout: 100 frames at 518 x 518 x 128 channels pass 2 ** 31 elements.
        pixel = tl.program_id(0).to(tl.int64) * BLOCK_PIXELS + tl.arange(0, BLOCK_PIXELS).to(tl.int64)
        channel = tl.program_id(1).to(tl.int64) * BLOCK_CHANNELS + tl.arange(0, BLOCK_CHANNELS).to(tl.int64)
        pixel_mask = pixel < pixels
        mask = pixel_mask[:, None] & (channel < channels)[None, :]
        out_x = pixel % out_width
        out_y = (pixel // out_width) % out_height
        image = pixel // (out_width * out_height)
        # PyTorch's aligned-corners source index and weights (upsample_bilinear2d), in float32.
        source_y = scale_height * out_y.to(tl.float32)
        source_x = scale_width * out_x.to(tl.float32)
        y0 = source_y.to(tl.int64)  # truncation: the source index is never negative
        x0 = source_x.to(tl.int64)
        y1 = tl.where(y0 < in_height - 1, y0 + 1, y0)
        x1 = tl.where(x0 < in_width - 1, x0 + 1, x0)
        weight_y1 = source_y - y0.to(tl.float32)
        weight_x1 = source_x - x0.to(tl.float32)
        weight_y0 = 1.0 - weight_y1
        weight_x0 = 1.0 - weight_x1
        rows = image * in_height
        c = channel[None, :]
        top = (rows + y0) * in_width
        bottom = (rows + y1) * in_width
        v00 = tl.load(x_ptr + ((top + x0) * channels)[:, None] + c, mask=mask, other=0.0).to(tl.float32)
        v01 = tl.load(x_ptr + ((top + x1) * channels)[:, None] + c, mask=mask, other=0.0).to(tl.float32)
        v10 = tl.load(x_ptr + ((bottom + x0) * channels)[:, None] + c, mask=mask, other=0.0).to(tl.float32)
        v11 = tl.load(x_ptr + ((bottom + x1) * channels)[:, None] + c, mask=mask, other=0.0).to(tl.float32)
        wx0 = weight_x0[:, None]
        wx1 = weight_x1[:, None]
        value = weight_y0[:, None] * (wx0 * v00 + wx1 * v01) + weight_y1[:, None] * (wx0 * v10 + wx1 * v11)
        if ADD:
            in_image = (pixel % (out_width * out_height)) * channels
            value = value.to(out_ptr.dtype.element_ty).to(tl.float32)  # eager rounds the blend first
            value = value + tl.load(add_ptr + in_image[:, None] + c, mask=mask, other=0.0).to(tl.float32)
        tl.store(out_ptr + (pixel * channels)[:, None] + c, value.to(out_ptr.dtype.element_ty), mask=mask)

    return upsample_kernel


def upsample_applies(x: Tensor, add: Tensor | None = None) -> bool:
    """True where the kernel computes what ``F.interpolate`` (and adding ``add``) does to ``x``."""
    return (
        triton_can_run(x)
        and SWITCH.enabled()
        and not (torch.is_grad_enabled() and (x.requires_grad or (add is not None and add.requires_grad)))
        and x.dim() == 4
        and x.dtype in DTYPES
        and x.shape[1] > 1
        and x.is_contiguous(memory_format=torch.channels_last)
        and (add is None or (add.dtype == x.dtype and add.device == x.device))
        and _kernel() is not None
    )


def _aligned_corners_scale(in_size: int, out_size: int) -> float:
    """PyTorch's source step, (in - 1) / (out - 1) computed in float32."""
    if out_size <= 1:
        return 0.0
    return float(np.float32(in_size - 1) / np.float32(out_size - 1))


def upsample_bilinear(x: Tensor, size: Sequence[int], add: Tensor | None = None) -> Tensor:
    """Bilinear resize with aligned corners of (N, C, h, w) ``x`` to (N, C, *size), plus ``add``
    ((C, *size), the same for every map) if given; channels-last out where the kernel runs."""
    size = (int(size[0]), int(size[1]))
    if add is not None and tuple(add.shape) != (x.shape[1], *size):
        raise ValueError(f"the added map {tuple(add.shape)} is not (C, H, W) = {(x.shape[1], *size)}")
    if not upsample_applies(x, add):
        out = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return out if add is None else out + add
    batch, channels, in_height, in_width = x.shape
    out = torch.empty((batch, channels, *size), dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    add_rows = None if add is None else add.permute(1, 2, 0).contiguous()  # (H, W, C), as the output's pixels
    pixels = batch * size[0] * size[1]
    block_channels = min(128, 1 << (channels - 1).bit_length())
    grid = (-(-pixels // BLOCK_PIXELS), -(-channels // block_channels))
    _kernel()[grid](
        x, out if add_rows is None else add_rows, out, pixels, in_height, in_width, size[0], size[1], channels,
        _aligned_corners_scale(in_height, size[0]), _aligned_corners_scale(in_width, size[1]),
        BLOCK_PIXELS=BLOCK_PIXELS, BLOCK_CHANNELS=block_channels, ADD=add is not None, num_warps=4,
    )  # fmt: skip
    return out
