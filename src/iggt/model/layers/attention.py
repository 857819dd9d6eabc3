"""Multi-head self-attention with optional QK-norm and 2D RoPE; the kernel is chosen in attention_kernels."""

from torch import Tensor, nn

from iggt.model.layers.attention_kernels import attend
from iggt.model.layers.fused_qk_rope import fusion_applies, qk_norm_rope
from iggt.model.layers.rope import RotaryPositionEmbedding2D


class Attention(nn.Module):
    """Self-attention over (B, N, dim) tokens; ``positions`` (B, N, 2) are needed when ``rope`` is set."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qk_norm: bool = False,
        rope: RotaryPositionEmbedding2D | None = None,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.q_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)
        self.rope = rope

    def forward(self, x: Tensor, positions: Tensor | None = None) -> Tensor:
        return self.output(attend(*self.heads(x, positions)))

    def heads(self, x: Tensor, positions: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """(B, N, dim) tokens -> queries, keys and values (B, N, heads, head_dim), through the fused
        QK-norm + RoPE kernel where it applies (fused_qk_rope), else eagerly."""
        qkv = self.qkv(x)
        if fusion_applies(qkv, self.q_norm, self.k_norm, self.rope, positions, self.head_dim):
            return qk_norm_rope(qkv, positions, self.q_norm, self.k_norm, self.rope, self.num_heads)
        return self._split_norm_rotate(qkv, positions)

    def project(self, x: Tensor, positions: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """(B, N, dim) tokens -> queries, keys and values (B, N, heads, head_dim), normed and rotated.

        Split from :meth:`forward` so the approximate global attentions
        (:mod:`iggt.model.layers.key_value_subsampling`) can choose which keys and values to attend to.
        Always the eager float32 path: those modes average keys, so they keep its precision;
        :meth:`heads` (exact and FP8 attention) takes the fused kernel where it applies.
        """
        return self._split_norm_rotate(self.qkv(x), positions)

    def _split_norm_rotate(self, qkv: Tensor, positions: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """(B, N, 3 * dim) projections -> (B, N, heads, head_dim) queries, keys, values, eagerly."""
        batch, tokens, _ = qkv.shape
        # (B, N, heads, head_dim) throughout: the layout FlashAttention takes, and the output
        # folds back to (B, N, dim) without a transpose.
        query, key, value = qkv.reshape(batch, tokens, 3, self.num_heads, self.head_dim).unbind(2)
        query, key = self.q_norm(query), self.k_norm(key)
        if self.rope is not None:
            query, key = self.rope(query, positions), self.rope(key, positions)
        return query, key, value

    def output(self, attended: Tensor) -> Tensor:
        """(B, N, heads, head_dim) attention results -> (B, N, dim) projected tokens."""
        batch, tokens = attended.shape[:2]
        return self.proj(attended.reshape(batch, tokens, self.num_heads * self.head_dim))
