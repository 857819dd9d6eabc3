"""Instance adaptor (official name `part_adaptor`): trunk tokens -> four instance feature levels.

Each of the four selected trunk layers is layer-normed, projected to `features` channels on the
patch grid (h, w) and resized to 4x, 2x, 1x and 0.5x the grid, each resize followed by a
convolutional residual projection (two for the 4x level, one per x2 step).
"""

import torch
from torch import Tensor, nn

from iggt.errors import InputError
from iggt.model.layers.fused_conv_epilogue import conv2d_weighted, pointwise_conv2d
from iggt.model.layers.fused_token_norm import normalize


def fold_batch_norm(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """(weight, bias) of the one convolution that computes ``norm(conv(x))`` with ``norm``'s running
    statistics (eval mode), in float32: ``w * g / sqrt(var + eps)`` and ``beta + (b - mean) * g / sqrt(var + eps)``."""
    gain = norm.weight.float() * torch.rsqrt(norm.running_var.float() + norm.eps)
    bias = conv.bias.float() if conv.bias is not None else torch.zeros_like(gain)
    weight = conv.weight.float() * gain.view(-1, 1, 1, 1)
    return weight, norm.bias.float() + (bias - norm.running_mean.float()) * gain


def _folded_conv(x: Tensor, conv: nn.Conv2d, norm: nn.BatchNorm2d, residual: Tensor | None, relu: bool) -> Tensor:
    """``relu?(norm(conv(x)) + residual?)`` as one convolution and one epilogue pass; eager where the
    epilogue does not apply."""
    weight, bias = fold_batch_norm(conv, norm)
    residuals = () if residual is None else (residual,)
    return conv2d_weighted(x, conv, weight, bias, residuals, "relu" if relu else None)


class ConvResidualProjection(nn.Module):
    """1x1 conv + BN + ReLU, a residual pair of 3x3 conv + BN, then a 1x1 conv; (B, C, H, W) kept.

    In inference (eval mode, no gradient) each BatchNorm is folded into the convolution before it
    (:func:`fold_batch_norm`) and its bias, the residual and the ReLU go into one epilogue pass
    (:mod:`iggt.model.layers.fused_conv_epilogue`): the same function, rounded once per convolution
    instead of after the convolution and again after the norm.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.input_proj = nn.Sequential(
            nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU()
        )
        self.residual_conv = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.output_proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or torch.is_grad_enabled():
            x = self.input_proj(x)
            return self.output_proj(self.residual_conv(x) + x)
        input_conv, input_norm, _ = self.input_proj
        first_conv, first_norm, _, second_conv, second_norm = self.residual_conv
        x = _folded_conv(x, input_conv, input_norm, None, relu=True)
        hidden = _folded_conv(x, first_conv, first_norm, None, relu=True)
        return pointwise_conv2d(_folded_conv(hidden, second_conv, second_norm, x, relu=False), self.output_proj)


def _resize_stages(features: int) -> nn.ModuleList:
    """The four resampling stages: x4 (two x2 transposed convs), x2, x1, x0.5 (stride-2 conv)."""

    def upsample_x2(kernel_size: int, padding: int) -> nn.ConvTranspose2d:
        return nn.ConvTranspose2d(features, features, kernel_size, stride=2, padding=padding)

    return nn.ModuleList(
        [
            nn.Sequential(
                upsample_x2(4, 1),
                ConvResidualProjection(features),
                upsample_x2(4, 1),
                ConvResidualProjection(features),
            ),
            nn.Sequential(upsample_x2(2, 0), ConvResidualProjection(features)),
            nn.Sequential(nn.Identity(), ConvResidualProjection(features)),
            nn.Sequential(nn.Conv2d(features, features, 3, stride=2, padding=1), ConvResidualProjection(features)),
        ]
    )


class InstanceAdaptor(nn.Module):
    """Reprojects trunk tokens into the instance decoder's four input levels."""

    def __init__(self, dim_in: int, features: int = 256, patch_size: int = 14) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.norm = nn.LayerNorm(dim_in)
        self.projects = nn.ModuleList([nn.Conv2d(dim_in, features, 1) for _ in range(4)])
        self.resize_layers = _resize_stages(features)

    def forward(self, tokens: list[torch.Tensor], images: torch.Tensor, patch_start_idx: int) -> list[torch.Tensor]:
        """Four feature levels for the frames of `images`.

        Args:
            tokens: the 4 selected trunk layers (official blocks 4, 11, 17, 23), each
                (B, S, patch_start_idx + h*w, dim_in).
            images: (B, S, 3, H, W), only its shape is read; h = H // patch_size, w = W // patch_size.
            patch_start_idx: index of the first patch token.

        Returns:
            [(B*S, F, 4h, 4w), (B*S, F, 2h, 2w), (B*S, F, h, w), (B*S, F, ceil(h/2), ceil(w/2))].
        """
        if len(tokens) != len(self.projects):
            raise InputError(f"InstanceAdaptor got {len(tokens)} token layers; pass exactly {len(self.projects)}")
        batch, frames, _, height, width = images.shape
        grid_height, grid_width = height // self.patch_size, width // self.patch_size
        levels = []
        for layer_tokens, project, resize in zip(tokens, self.projects, self.resize_layers, strict=True):
            patches = normalize(
                layer_tokens[:, :, patch_start_idx:].reshape(batch * frames, -1, layer_tokens.shape[-1]),
                self.norm,
                for_products=True,
            )
            patches = patches.transpose(1, 2).reshape(batch * frames, -1, grid_height, grid_width)
            levels.append(resize(project(patches)))
        return levels
