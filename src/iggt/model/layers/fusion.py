"""DPT fusion blocks (RefineNet style), shared by the depth, point, track and instance heads.

Attribute names (``resConfUnit1``, ``out_conv``, ``layer1_rn``, ``refinenet1``) follow the
official checkpoint.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from iggt.model.layers.fused_conv_epilogue import conv2d, pointwise_conv2d
from iggt.model.layers.fused_upsample import upsample_applies, upsample_bilinear

# F.interpolate indexes with 32-bit integers: split larger outputs along the batch.
_MAX_INTERPOLATE_ELEMENTS = 1_610_612_736


def interpolate_bilinear(x: Tensor, size: Sequence[int], add: Tensor | None = None) -> Tensor:
    """(N, C, h, w) -> (N, C, *size), bilinear with aligned corners, safe for huge outputs, plus
    ``add`` ((C, *size), the same for every map) if given.

    Channels-last maps on CUDA inference resize (and add) in one pass (:mod:`fused_upsample`).
    """
    size = (int(size[0]), int(size[1]))
    if upsample_applies(x, add):
        return upsample_bilinear(x, size, add)
    elements = size[0] * size[1] * x.shape[0] * x.shape[1]
    if elements <= _MAX_INTERPOLATE_ELEMENTS:
        out = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
    else:
        pieces = x.chunk(elements // _MAX_INTERPOLATE_ELEMENTS + 1, dim=0)
        out = torch.cat([F.interpolate(p, size=size, mode="bilinear", align_corners=True) for p in pieces])
    if add is None:
        return out
    # in place where no gradient is recorded: a second full-resolution map would be the peak
    return out + add if torch.is_grad_enabled() else out.add_(add)


class ResidualConvUnit(nn.Module):
    """relu -> 3x3 conv -> relu -> 3x3 conv, plus a skip: (N, C, h, w) -> (N, C, h, w).

    The skip carries relu(x), not x: the official code applies an in-place ReLU to its input
    before adding it back, and the released weights were trained that way.
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(features, features, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_activated(F.relu(x))

    def forward_activated(self, activated: Tensor, extra: Tensor | None = None, relu_out: bool = False) -> Tensor:
        """The unit given relu(x); with ``extra``, ``extra + unit``, and with ``relu_out`` its ReLU.

        Each convolution's bias, skip and ReLU are one pass on CUDA (:mod:`fused_conv_epilogue`).
        """
        hidden = conv2d(activated, self.conv1, activation="relu")
        residuals = (activated,) if extra is None else (activated, extra)
        return conv2d(hidden, self.conv2, residuals, activation="relu" if relu_out else None)


class FeatureFusionBlock(nn.Module):
    """Fuse a coarser path with a skip feature, upsample, then a 1x1 conv.

    forward(x (N, C, h, w), skip (N, C, h, w) or None, size) -> (N, C, *size), where size
    defaults to twice (h, w).
    """

    def __init__(self, features: int, has_residual: bool = True) -> None:
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, kernel_size=1)
        if has_residual:
            self.resConfUnit1 = ResidualConvUnit(features)
        self.has_residual = has_residual
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(self, x: Tensor, skip: Tensor | None = None, size: Sequence[int] | None = None) -> Tensor:
        if self.has_residual:
            # x + resConfUnit1(skip), and resConfUnit2's ReLU of it, in unit 1's last epilogue.
            activated = self.resConfUnit1.forward_activated(F.relu(skip), extra=x, relu_out=True)
        else:
            activated = F.relu(x)
        x = self.resConfUnit2.forward_activated(activated)
        if size is None:
            size = (x.shape[-2] * 2, x.shape[-1] * 2)
        return pointwise_conv2d(interpolate_bilinear(x, size), self.out_conv)


def make_scratch(in_channels: Sequence[int], features: int) -> nn.Module:
    """Container with ``layer{1..4}_rn`` (3x3 convs in_channels[i] -> features, no bias) and
    ``refinenet{1..4}`` fusion blocks (refinenet4, the coarsest, has no skip input)."""
    scratch = nn.Module()
    for level, channels in enumerate(in_channels, start=1):
        conv = nn.Conv2d(channels, features, kernel_size=3, padding=1, bias=False)
        scratch.add_module(f"layer{level}_rn", conv)
    for level in range(1, 5):
        scratch.add_module(f"refinenet{level}", FeatureFusionBlock(features, has_residual=level != 4))
    return scratch
