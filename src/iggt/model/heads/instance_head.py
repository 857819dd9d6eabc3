"""Instance head (official name `part_head`): a DPT-style decoder over the instance adaptor's four
levels that fuses the point head's geometry features, then window attention and a small conv head.

Decoder, coarse to fine (h x w = patch grid; F = features):
  0.5x -> refinenet4 -> 1x -> cross-attention to geometry 1x (`cross_attention_2`, replaces the map)
  -> refinenet3 -> 2x -> refinenet2 -> 4x -> overlapping-window cross-attention to geometry 4x
  -> refinenet1 -> 8x -> 3x3 conv to F/2 -> window self-attention -> bilinear to (h*p, w*p)
  -> 3x3 conv, ReLU, 1x1 conv to out_dim -> L2 normalisation per pixel.
The official code also runs `cross_attention_1` at 2x but discards its result; by default we skip it
(same output) and freeze it, `fuse_geometry_at_2x=True` feeds its result on instead.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from iggt.errors import InputError
from iggt.model.layers.fusion import interpolate_bilinear, make_scratch
from iggt.model.layers.output_convolutions import output_convolutions
from iggt.model.layers.window_attention import OverlappingWindowCrossAttention, WindowSelfAttention


class GeometryCrossAttention(nn.Module):
    """Multi-head cross-attention over whole frames: (N, Lq, C) queries, (N, Lk, C) context."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.projq = nn.Linear(dim, dim)
        self.projk = nn.Linear(dim, dim)
        self.projv = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        attended = F.scaled_dot_product_attention(
            self._split_heads(self.projq(query)),
            self._split_heads(self.projk(context)),
            self._split_heads(self.projv(context)),
        )
        return self.proj(attended.transpose(1, 2).reshape(query.shape))

    def attend_maps(self, grid: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) queries, (N, C, H', W') context -> (N, C, H, W)."""
        attended = self(grid.flatten(2).transpose(1, 2), context.flatten(2).transpose(1, 2))
        return attended.transpose(1, 2).reshape(grid.shape)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], self.num_heads, -1).transpose(1, 2)


def _decoder_scratch(in_channels: int, features: int, out_dim: int, output_hidden_channels: int) -> nn.Module:
    """The decoder's convolutions (official container name `scratch`)."""
    scratch = make_scratch([in_channels] * 4, features)
    scratch.output_conv1 = nn.Conv2d(features, features // 2, 3, padding=1)
    scratch.output_conv2 = nn.Sequential(
        nn.Conv2d(features // 2, output_hidden_channels, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(output_hidden_channels, out_dim, 1),
    )
    return scratch


class InstanceHead(nn.Module):
    """Per-pixel instance features from the adaptor levels and the point head's geometry features.

    Args:
        dim_in: trunk token width; only sizes the unused legacy projections.
        features: decoder width F; the geometry features must have F channels.
        out_dim: instance feature channels.
        patch_size: trunk patch size p.
        window_size: window side of both window attentions.
        cross_attention_heads: heads of the frame-wide cross-attentions.
        window_attention_heads: heads of both window attentions.
        adaptor_features: channels of the adaptor levels (default F).
        output_hidden_channels: width between the last two convs (official 32).
        refiner_hidden_channels: width inside the window refiners' conv tails (official 64).
        conv_compress_ratio, channel_squeeze_factor: channel-attention widths (F/2 // 3, F/2 // 30).
        overlap_ratio: enlargement of the cross-attention key windows (official 0.5: 8 -> 12).
        drop_path: stochastic depth of the window self-attention block during training.
        legacy_projection_channels: widths of `norm`/`projects`/`resize_layers`, which the official
            head inherits from the DPT head but never calls; kept (frozen) so the official checkpoint
            loads strictly. None leaves them out.
        fuse_geometry_at_2x: feed `cross_attention_1`'s result on (the official code discards it).
        reference_window_query_layout: window the cross-attention queries the official way, which
            mixes channels and positions (needed for the official checkpoint); False windows them
            spatially.
    """

    def __init__(
        self,
        dim_in: int,
        features: int = 256,
        out_dim: int = 8,
        patch_size: int = 14,
        window_size: int = 8,
        cross_attention_heads: int = 8,
        window_attention_heads: int = 4,
        adaptor_features: int | None = None,
        output_hidden_channels: int = 32,
        refiner_hidden_channels: int = 64,
        conv_compress_ratio: int = 3,
        channel_squeeze_factor: int = 30,
        overlap_ratio: float = 0.5,
        drop_path: float = 0.1,
        legacy_projection_channels: Sequence[int] | None = (256, 512, 1024, 1024),
        fuse_geometry_at_2x: bool = False,
        reference_window_query_layout: bool = True,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.features = features
        self.fuse_geometry_at_2x = fuse_geometry_at_2x
        if legacy_projection_channels is not None:
            self._add_legacy_projections(dim_in, list(legacy_projection_channels))
        self.scratch = _decoder_scratch(adaptor_features or features, features, out_dim, output_hidden_channels)
        self.cross_attention_1 = GeometryCrossAttention(features, cross_attention_heads)
        self.cross_attention_2 = GeometryCrossAttention(features, cross_attention_heads)
        if not fuse_geometry_at_2x:
            self.cross_attention_1.requires_grad_(False)
        self.window_self_atten = WindowSelfAttention(
            features // 2,
            features // 2,
            num_heads=window_attention_heads,
            window_size=window_size,
            hidden_channels=refiner_hidden_channels,
            conv_compress_ratio=conv_compress_ratio,
            channel_squeeze_factor=channel_squeeze_factor,
            drop_path=drop_path,
        )
        self.window_cross_attention = OverlappingWindowCrossAttention(
            features,
            features,
            num_heads=window_attention_heads,
            window_size=window_size,
            overlap_ratio=overlap_ratio,
            hidden_channels=refiner_hidden_channels,
            reference_query_layout=reference_window_query_layout,
        )

    def forward(
        self,
        adaptor_features: list[torch.Tensor],
        geometry_features: list[torch.Tensor],
        images: torch.Tensor,
    ) -> torch.Tensor:
        """Unit-norm instance features (B, S, H, W, out_dim), channels last.

        Args:
            adaptor_features: InstanceAdaptor output for these frames, (B*S, F_a, 4h, 4w),
                (B*S, F_a, 2h, 2w), (B*S, F_a, h, w), (B*S, F_a, ceil(h/2), ceil(w/2)).
            geometry_features: the point head's fusion features for the same frames,
                (B*S, F, 4h, 4w), (B*S, F, 2h, 2w), (B*S, F, h, w).
            images: (B, S, 3, H, W) with H = h * patch_size, W = w * patch_size; only its shape is read.
        """
        batch, frames, _, height, width = images.shape
        features = F.normalize(self.decode(adaptor_features, geometry_features, images), dim=1)
        return features.view(batch, frames, -1, height, width).permute(0, 1, 3, 4, 2)

    def decode(
        self,
        adaptor_features: list[torch.Tensor],
        geometry_features: list[torch.Tensor],
        images: torch.Tensor,
    ) -> torch.Tensor:
        """Unnormalised features (B*S, out_dim, H, W), the official `part_head` output; args as `forward`."""
        self._check_inputs(adaptor_features, geometry_features, images)
        fused = self.window_self_atten(self._fuse_levels(adaptor_features, geometry_features))
        fused = interpolate_bilinear(fused, images.shape[-2:])
        hidden, _, last = self.scratch.output_conv2
        return output_convolutions(fused, hidden, last)

    def _fuse_levels(self, adaptor_features: list[torch.Tensor], geometry_features: list[torch.Tensor]) -> torch.Tensor:
        """Four adaptor levels + three geometry levels -> (B*S, F/2, 8h, 8w)."""
        scratch = self.scratch
        finest = scratch.layer1_rn(adaptor_features[0])
        fine = scratch.layer2_rn(adaptor_features[1])
        coarse = scratch.layer3_rn(adaptor_features[2])
        coarsest = scratch.layer4_rn(adaptor_features[3])
        fused = scratch.refinenet4(coarsest, size=coarse.shape[-2:])
        fused = self.cross_attention_2.attend_maps(fused, geometry_features[2])
        fused = scratch.refinenet3(fused, coarse, size=fine.shape[-2:])
        if self.fuse_geometry_at_2x:
            fused = self.cross_attention_1.attend_maps(fused, geometry_features[1])
        fused = scratch.refinenet2(fused, fine, size=finest.shape[-2:])
        fused = self.window_cross_attention(fused, geometry_features[0])
        return scratch.output_conv1(scratch.refinenet1(fused, finest))

    def _check_inputs(
        self,
        adaptor_features: list[torch.Tensor],
        geometry_features: list[torch.Tensor],
        images: torch.Tensor,
    ) -> None:
        height, width = images.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise InputError(
                f"InstanceHead got images {height}x{width}; resize both sides to multiples of {self.patch_size}"
            )
        if len(adaptor_features) != 4 or len(geometry_features) != 3:
            raise InputError(
                f"InstanceHead got {len(adaptor_features)} adaptor and "
                f"{len(geometry_features)} geometry levels; pass 4 and 3"
            )
        for level, (geometry, adaptor) in enumerate(zip(geometry_features, adaptor_features, strict=False)):
            expected = (adaptor.shape[0], self.features, *adaptor.shape[-2:])
            if tuple(geometry.shape) != expected:
                raise InputError(
                    f"InstanceHead geometry level {level} has shape {tuple(geometry.shape)}; expected {expected}"
                )

    def _add_legacy_projections(self, dim_in: int, channels: list[int]) -> None:
        self.norm = nn.LayerNorm(dim_in)
        self.projects = nn.ModuleList([nn.Conv2d(dim_in, width, 1) for width in channels])
        self.resize_layers = nn.ModuleList(
            [
                nn.ConvTranspose2d(channels[0], channels[0], 4, stride=4),
                nn.ConvTranspose2d(channels[1], channels[1], 2, stride=2),
                nn.Identity(),
                nn.Conv2d(channels[3], channels[3], 3, stride=2, padding=1),
            ]
        )
        for module in (self.norm, self.projects, self.resize_layers):
            module.requires_grad_(False)
