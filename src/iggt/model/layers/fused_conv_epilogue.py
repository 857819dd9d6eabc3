"""A convolution's bias, residual adds and activation in one pass on CUDA (Triton), for the heads' inference.

PyTorch's cuDNN convolution adds its bias in a pass of its own after the convolution's kernel, and
the RefineNet units of the DPT and instance heads then add their skips and apply ReLU as further
passes over the same map: after a residual unit's second convolution come the bias, the unit's
skip, the fusion block's input and the next unit's ReLU, four passes over a map of up to 1 GB per
12 frames at 518 x 518. In the H100 profile of the float32 heads (forward_profile_h100_heads.json)
the broadcast bias adds alone are a fifth of each DPT head's kernel time.

:func:`conv2d` runs the convolution without its bias, then one pass that reads its output, adds the
bias and each residual in the order the eager code adds them, applies the activation in float32
registers and writes the result over the convolution's output. In float32 that is bit for bit the
eager result (the same additions in the same order); under bf16/fp16 autocast it rounds once where
eager rounds after each step. :func:`pointwise_conv2d` runs a 1x1 convolution of a channels-last map
as the matrix product it is, so that cuBLAS adds the bias in the product's epilogue.

Both run only where they compute that (:func:`fusion_applies`): CUDA (or Triton's CPU interpreter,
for the tests), no gradient recorded, a dense
output whose residuals share its dtype, shape and strides, Triton importable; elsewhere the eager
modules run. On by default; ``IGGT_FUSED_CONV_EPILOGUE=0`` or :func:`fused_conv_epilogue` (False)
turns both off.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from iggt.model.layers.kernel_switch import KernelSwitch, lazy_triton_kernel, triton_can_run

SWITCH = KernelSwitch("IGGT_FUSED_CONV_EPILOGUE")
ACTIVATIONS = {None: 0, "relu": 1, "leaky_relu": 2}
BLOCK = 1024
"""Elements per program."""


def fused_conv_epilogue(enabled: bool) -> contextlib.AbstractContextManager[None]:
    """Allow (True) or forbid (False) the fused epilogues for the enclosed calls."""
    return SWITCH.override(enabled)


@lazy_triton_kernel
def _kernel(triton, tl):
    """The Triton kernel, built from the imported ``triton`` and ``triton.language``."""

    @triton.jit
    def conv_epilogue_kernel(
        out_ptr, bias_ptr, first_ptr, second_ptr, numel, channels, spatial, negative_slope,
        BLOCK: tl.constexpr, HAS_BIAS: tl.constexpr, RESIDUALS: tl.constexpr, ACTIVATION: tl.constexpr,
        CHANNELS_LAST: tl.constexpr,
    ):  # fmt: skip
        # int64 offsets: a 12-frame map at 518 x 518 x 128 already passes 2 ** 31 elements at 100 frames.
        offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offsets < numel
        value = tl.load(out_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
        if HAS_BIAS:
            if CHANNELS_LAST:  # noqa: SIM108 (a constexpr branch, resolved when the kernel compiles)
                channel = offsets % channels
            else:
                channel = (offsets // spatial) % channels
            value = value + tl.load(bias_ptr + channel, mask=mask, other=0.0).to(tl.float32)
        if RESIDUALS >= 1:
            value = value + tl.load(first_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
        if RESIDUALS >= 2:
            value = value + tl.load(second_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
        if ACTIVATION == 1:
            value = tl.where(value < 0.0, 0.0, value)  # NaN stays NaN, as in torch.relu
        elif ACTIVATION == 2:
            value = tl.where(value > 0.0, value, value * negative_slope)
        tl.store(out_ptr + offsets, value.to(out_ptr.dtype.element_ty), mask=mask)

    return conv_epilogue_kernel


def _dense_layout(x: Tensor) -> bool | None:
    """True for a channels-last (N, C, H, W) tensor, False for a contiguous one, None for neither."""
    if x.dim() == 4 and x.shape[1] > 1 and x.is_contiguous(memory_format=torch.channels_last):
        return True
    return False if x.is_contiguous() else None


def fusion_applies(out: Tensor, residuals: tuple[Tensor, ...], *weights: Tensor) -> bool:
    """True where the epilogue pass computes what the eager additions and activation do to ``out``."""
    return (
        triton_can_run(out)
        and SWITCH.enabled()
        and not (torch.is_grad_enabled() and any(t.requires_grad for t in (out, *residuals, *weights)))
        and out.dim() == 4
        and _dense_layout(out) is not None
        and len(residuals) <= 2
        and all(r.dtype == out.dtype and r.shape == out.shape and r.stride() == out.stride() for r in residuals)
        and _kernel() is not None
    )


def apply_epilogue(
    out: Tensor,
    bias: Tensor | None,
    residuals: tuple[Tensor, ...] = (),
    activation: str | None = None,
    negative_slope: float = 0.01,
) -> Tensor:
    """``activation(out + bias[c] + residuals[0] + residuals[1])`` written over (N, C, H, W) ``out``.

    ``out`` contiguous or channels-last, each residual of its dtype, shape and strides; the caller
    checks :func:`fusion_applies` (Triton's CPU interpreter runs it on the CPU too).
    """
    layout = _dense_layout(out)
    if layout is None or len(residuals) > 2:
        raise ValueError(f"the epilogue needs a dense output and at most two residuals, got {tuple(out.stride())}")
    channels, spatial = out.shape[1], out.shape[2] * out.shape[3]
    numel = out.numel()
    first = residuals[0] if residuals else out
    second = residuals[1] if len(residuals) > 1 else out
    _kernel()[(-(-numel // BLOCK),)](
        out, out if bias is None else bias, first, second, numel, channels, spatial, negative_slope,
        BLOCK=BLOCK, HAS_BIAS=bias is not None, RESIDUALS=len(residuals), ACTIVATION=ACTIVATIONS[activation],
        CHANNELS_LAST=layout, num_warps=4,
    )  # fmt: skip
    return out


def _eager_tail(out: Tensor, residuals: tuple[Tensor, ...], activation: str | None, negative_slope: float) -> Tensor:
    for residual in residuals:
        out = out + residual
    if activation == "relu":
        return F.relu(out)
    if activation == "leaky_relu":
        return F.leaky_relu(out, negative_slope)
    return out


def conv2d(
    x: Tensor,
    conv: nn.Conv2d,
    residuals: tuple[Tensor, ...] = (),
    activation: str | None = None,
    negative_slope: float = 0.01,
) -> Tensor:
    """``activation(conv(x) + residuals[0] + ...)``, the residuals added in order; (N, C, H, W) in and out.

    ``activation``: None, "relu" or "leaky_relu" (with ``negative_slope``). On CUDA inference the
    bias, residuals and activation are one pass over the convolution's output (see the module).
    """
    _check_activation(activation)
    if not triton_can_run(x) or conv.padding_mode != "zeros" or not SWITCH.enabled():
        return _eager_tail(conv(x), residuals, activation, negative_slope)
    return conv2d_weighted(x, conv, conv.weight, conv.bias, residuals, activation, negative_slope)


def conv2d_weighted(
    x: Tensor,
    conv: nn.Conv2d,
    weight: Tensor,
    bias: Tensor | None,
    residuals: tuple[Tensor, ...] = (),
    activation: str | None = None,
    negative_slope: float = 0.01,
) -> Tensor:
    """:func:`conv2d` with ``weight`` and ``bias`` in place of ``conv``'s own (its stride, padding,
    dilation and groups kept), as a convolution with a BatchNorm folded into it needs: the
    convolution without its bias, then the epilogue pass where it applies, else eager's adds."""
    _check_activation(activation)
    out = F.conv2d(x, weight, None, conv.stride, conv.padding, conv.dilation, conv.groups)
    weights = (weight,) if bias is None else (weight, bias)
    if not fusion_applies(out, residuals, *weights):
        if bias is not None:
            out = out + bias.to(out.dtype).view(1, -1, 1, 1)
        return _eager_tail(out, residuals, activation, negative_slope)
    return apply_epilogue(out, None if bias is None else bias.detach(), residuals, activation, negative_slope)


def _check_activation(activation: str | None) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown epilogue activation {activation!r}; choose from {sorted(map(str, ACTIVATIONS))}")


def pointwise_conv2d(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """A 1x1 convolution (stride 1, no groups) of (N, C, H, W) ``x``; a channels-last ``x`` on CUDA
    inference goes through one matrix product with the bias in its epilogue, channels-last out."""
    eligible = (
        triton_can_run(x)
        and SWITCH.enabled()
        and conv.kernel_size == (1, 1)
        and conv.stride == (1, 1)
        and conv.groups == 1
        and not (torch.is_grad_enabled() and (x.requires_grad or conv.weight.requires_grad))
        and x.dim() == 4
        and x.shape[1] > 1
        and x.is_contiguous(memory_format=torch.channels_last)
    )
    if not eligible:
        return conv(x)
    weight = conv.weight.view(conv.out_channels, conv.in_channels)
    return F.linear(x.permute(0, 2, 3, 1), weight, conv.bias).permute(0, 3, 1, 2)
