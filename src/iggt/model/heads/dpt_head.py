"""DPT head (Vision Transformers for Dense Prediction) over four trunk layers.

Reassembly: each layer's patch tokens are normalised, projected with a 1x1 conv and resized to
4x, 2x, 1x and 0.5x the patch grid; RefineNet fusion blocks merge them coarse to fine at 8x the
grid; the result is upsampled to the image and mapped to ``output_dim`` channels (values +
confidence). The point head also hands its fusion features to the instance head.
"""

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from iggt.errors import ConfigError
from iggt.model.layers.fused_conv_epilogue import pointwise_conv2d
from iggt.model.layers.fused_token_norm import normalize
from iggt.model.layers.fusion import interpolate_bilinear, make_scratch
from iggt.model.layers.output_convolutions import output_convolutions
from iggt.model.layers.uv_embedding import add_uv_embedding, uv_embedding


def inverse_log(x: Tensor) -> Tensor:
    """sign(x) * (exp(|x|) - 1): inverse of the log-scaling the point maps are trained in."""
    return torch.sign(x) * torch.expm1(x.abs())


def unit_norm(x: Tensor) -> Tensor:
    """Divide by the L2 norm of the last dimension."""
    return x / x.norm(dim=-1, keepdim=True)


VALUE_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "exp": torch.exp,
    "inv_log": inverse_log,
    "norm": unit_norm,
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "linear": lambda x: x,
}
CONF_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "expp1": lambda x: 1 + x.exp(),
    "expp0": torch.exp,
    "sigmoid": torch.sigmoid,
}


class DPTHead(nn.Module):
    """Four trunk layers (B, S, P, dim_in) -> dense maps at the input resolution.

    ``forward`` returns, for B scenes of S frames at H x W with an h x w patch grid:
    - ``feature_only``: (B, S, features, H / down_ratio, W / down_ratio) features;
    - otherwise ``(values (B, S, H, W, output_dim - 1), confidence (B, S, H, W))``, plus, with
      ``return_features=True``, the fusion features
      ``[(B*S, features, 4h, 4w), (B*S, features, 2h, 2w), (B*S, features, h, w)]``.
    """

    def __init__(
        self,
        dim_in: int,
        patch_size: int = 14,
        output_dim: int = 4,
        activation: str = "inv_log",
        conf_activation: str = "expp1",
        features: int = 256,
        out_channels: Sequence[int] = (256, 512, 1024, 1024),
        pos_embed: bool = True,
        feature_only: bool = False,
        down_ratio: int = 1,
    ) -> None:
        super().__init__()
        if activation not in VALUE_ACTIVATIONS or conf_activation not in CONF_ACTIVATIONS:
            raise ConfigError(
                f"unknown DPT activation {activation!r}/{conf_activation!r}; choose from "
                f"{sorted(VALUE_ACTIVATIONS)} / {sorted(CONF_ACTIVATIONS)}"
            )
        self.patch_size = patch_size
        self.activation = activation
        self.conf_activation = conf_activation
        self.pos_embed = pos_embed
        self.feature_only = feature_only
        self.down_ratio = down_ratio
        self.norm = nn.LayerNorm(dim_in)
        self.projects = nn.ModuleList(nn.Conv2d(dim_in, channels, kernel_size=1) for channels in out_channels)
        self.resize_layers = nn.ModuleList(
            [
                nn.ConvTranspose2d(out_channels[0], out_channels[0], kernel_size=4, stride=4),
                nn.ConvTranspose2d(out_channels[1], out_channels[1], kernel_size=2, stride=2),
                nn.Identity(),
                nn.Conv2d(out_channels[3], out_channels[3], kernel_size=3, stride=2, padding=1),
            ]
        )
        self.scratch = make_scratch(out_channels, features)
        if feature_only:
            self.scratch.output_conv1 = nn.Conv2d(features, features, kernel_size=3, padding=1)
        else:
            self.scratch.output_conv1 = nn.Conv2d(features, features // 2, kernel_size=3, padding=1)
            self.scratch.output_conv2 = nn.Sequential(
                nn.Conv2d(features // 2, 32, kernel_size=3, padding=1),
                nn.ReLU(),
                nn.Conv2d(32, output_dim, kernel_size=1),
            )

    def forward(
        self,
        tokens: Sequence[Tensor],
        images: Tensor,
        patch_start_idx: int,
        return_features: bool = False,
    ) -> Tensor | tuple[Tensor, ...]:
        batch, frames, _, height, width = images.shape
        grid = (height // self.patch_size, width // self.patch_size)
        levels = [
            self._reassemble(index, layer, grid, patch_start_idx, (height, width)) for index, layer in enumerate(tokens)
        ]
        fused, fusion_features = self._fuse(levels)
        out_size = (
            grid[0] * self.patch_size // self.down_ratio,
            grid[1] * self.patch_size // self.down_ratio,
        )
        embedding = None
        if self.pos_embed:
            embedding = uv_embedding(fused.shape[1], *out_size, width, height, fused.device, fused.dtype)
        out = interpolate_bilinear(fused, out_size, add=embedding)
        if self.feature_only:
            return out.reshape(batch, frames, *out.shape[1:])
        values, confidence = self._activate(self._output_layers(out))
        values = values.reshape(batch, frames, *values.shape[1:])
        confidence = confidence.reshape(batch, frames, *confidence.shape[1:])
        if return_features:
            return values, confidence, fusion_features
        return values, confidence

    def _reassemble(
        self,
        index: int,
        layer: Tensor,
        grid: tuple[int, int],
        patch_start_idx: int,
        image_size: tuple[int, int],
    ) -> Tensor:
        """(B, S, P, dim_in) trunk layer -> (B*S, out_channels[index], grid * scale) feature map."""
        patches = layer[:, :, patch_start_idx:]
        patches = normalize(patches.reshape(-1, *patches.shape[2:]), self.norm, for_products=True)
        x = patches.transpose(1, 2).reshape(patches.shape[0], patches.shape[2], *grid)
        x = pointwise_conv2d(x, self.projects[index])
        if self.pos_embed:
            x = add_uv_embedding(x, image_size[1], image_size[0])
        return self.resize_layers[index](x)

    def _fuse(self, levels: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Coarse-to-fine fusion -> (output_conv1 features at 8x the grid, [4x, 2x, 1x] fusion features)."""
        scratch = self.scratch
        level1, level2, level3, level4 = (
            getattr(scratch, f"layer{i}_rn")(level) for i, level in enumerate(levels, start=1)
        )
        fused4 = scratch.refinenet4(level4, size=level3.shape[2:])
        fused3 = scratch.refinenet3(fused4, level3, size=level2.shape[2:])
        fused2 = scratch.refinenet2(fused3, level2, size=level1.shape[2:])
        fused1 = scratch.refinenet1(fused2, level1)
        return scratch.output_conv1(fused1), [fused2, fused3, fused4]

    def _output_layers(self, features: Tensor) -> Tensor:
        """The output convolutions, float32 out (:mod:`iggt.model.layers.output_convolutions`)."""
        hidden, _, last = self.scratch.output_conv2
        return output_convolutions(features, hidden, last)

    def _activate(self, out: Tensor) -> tuple[Tensor, Tensor]:
        """(N, C, H, W) -> (values (N, H, W, C - 1), confidence (N, H, W))."""
        out = out.permute(0, 2, 3, 1)
        values = VALUE_ACTIVATIONS[self.activation](out[..., :-1])
        return values, CONF_ACTIVATIONS[self.conf_activation](out[..., -1])
