"""Pre-norm transformer block: x + ls1(attn(norm1(x))), then x + ls2(mlp(norm2(x)))."""

from collections.abc import Callable

from torch import Tensor, nn

from iggt.model.layers.attention import Attention
from iggt.model.layers.fused_residual_norm import add_scaled, add_scaled_then_norm, fusion_applies, layer_norm
from iggt.model.layers.layer_scale import LayerScale
from iggt.model.layers.mlp import Mlp
from iggt.model.layers.rope import RotaryPositionEmbedding2D

TokenMixer = Callable[[Attention, Tensor, Tensor | None], Tensor]
"""(attention module, (B, N, dim) normed tokens, positions) -> (B, N, dim): an approximation of
``attention(tokens, positions)`` (:mod:`iggt.model.layers.key_value_subsampling`, ``token_merging``)."""


class Block(nn.Module):
    """Transformer block on (B, N, dim) tokens, with layer scale when ``init_values`` is set."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        init_values: float | None = None,
        qk_norm: bool = False,
        rope: RotaryPositionEmbedding2D | None = None,
        norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qk_norm=qk_norm, rope=rope)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()

    def forward(self, x: Tensor, positions: Tensor | None = None, token_mixer: TokenMixer | None = None) -> Tensor:
        """``token_mixer`` (None: this block's attention) replaces the attention step, weights unchanged."""
        if fusion_applies(x, self.norm1, self.norm2):
            return self._fused_forward(x, positions, token_mixer)
        normed = self.norm1(x)
        mixed = self.attn(normed, positions) if token_mixer is None else token_mixer(self.attn, normed, positions)
        x = x + self.ls1(mixed)
        return x + self.ls2(self.mlp(self.norm2(x)))

    def _fused_forward(self, x: Tensor, positions: Tensor | None, token_mixer: TokenMixer | None) -> Tensor:
        """:meth:`forward` with the residual stream's passes fused (fused_residual_norm): inference on CUDA."""
        normed = layer_norm(x, self.norm1)
        mixed = self.attn(normed, positions) if token_mixer is None else token_mixer(self.attn, normed, positions)
        x, normed = add_scaled_then_norm(x, mixed, _gamma(self.ls1), self.norm2)
        return add_scaled(x, self.mlp(normed), _gamma(self.ls2))


def _gamma(layer_scale: nn.Module) -> Tensor | None:
    """A LayerScale's vector, None for the identity of a block without layer scale."""
    return layer_scale.gamma if isinstance(layer_scale, LayerScale) else None
