"""Camera head: iterative refinement of a 9-d pose encoding from the per-frame camera tokens.

Each iteration embeds the previous estimate (a learned empty pose at first), modulates the camera
tokens with adaptive LayerNorm (shift, scale, gate), runs a transformer trunk across the frames
and adds a predicted delta. Encoding: [t(3), quaternion xyzw(4), fov_h, fov_w]
(``iggt.geometry.pose_encoding``); the field of view passes through a ReLU.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from iggt.model.layers.block import Block
from iggt.model.layers.mlp import Mlp

POSE_ENCODING_DIM = 9


class CameraHead(nn.Module):
    """Last trunk layer (B, S, P, dim_in) -> list of ``iterations`` pose encodings (B, S, 9)."""

    def __init__(
        self,
        dim_in: int,
        trunk_depth: int = 4,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        init_values: float = 0.01,
    ) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            *(Block(dim_in, num_heads, mlp_ratio, init_values=init_values) for _ in range(trunk_depth))
        )
        self.token_norm = nn.LayerNorm(dim_in)
        self.trunk_norm = nn.LayerNorm(dim_in)
        self.empty_pose_tokens = nn.Parameter(torch.zeros(1, 1, POSE_ENCODING_DIM))
        self.embed_pose = nn.Linear(POSE_ENCODING_DIM, dim_in)
        self.poseLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim_in, 3 * dim_in))
        self.adaln_norm = nn.LayerNorm(dim_in, elementwise_affine=False, eps=1e-6)
        self.pose_branch = Mlp(dim_in, dim_in // 2, POSE_ENCODING_DIM)

    def forward(self, tokens: Tensor, iterations: int = 4) -> list[Tensor]:
        camera_tokens = self.token_norm(tokens[:, :, 0])
        batch, frames, _ = camera_tokens.shape
        encoding = None
        encodings = []
        for _ in range(iterations):
            if encoding is None:
                condition = self.embed_pose(self.empty_pose_tokens.expand(batch, frames, -1))
            else:
                # No gradient into earlier iterations: each refinement is supervised on its own.
                encoding = encoding.detach()
                condition = self.embed_pose(encoding)
            shift, scale, gate = self.poseLN_modulation(condition).chunk(3, dim=-1)
            modulated = gate * (self.adaln_norm(camera_tokens) * (1 + scale) + shift) + camera_tokens
            delta = self.pose_branch(self.trunk_norm(self.trunk(modulated)))
            encoding = delta if encoding is None else encoding + delta
            encodings.append(activate_pose(encoding))
        return encodings


def activate_pose(encoding: Tensor) -> Tensor:
    """Translation and quaternion stay linear; the two fields of view go through a ReLU."""
    return torch.cat([encoding[..., :7], F.relu(encoding[..., 7:])], dim=-1)
