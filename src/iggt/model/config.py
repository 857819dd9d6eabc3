"""The network's architecture as one frozen dataclass, plus named presets.

``large`` is the official IGGT architecture (its state_dict matches the released checkpoint key
for key); ``small`` and ``tiny`` keep the same module structure at smaller widths and depths.
Only what the weights need lives here; how a call runs (frame chunking, trunk precision,
activation checkpointing) is decided by the caller: see :meth:`iggt.model.iggt.IGGT.forward`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from iggt.errors import ConfigError

RETIRED_FIELDS = ("frames_chunk_size", "trunk_dtype", "activation_checkpointing", "extra")
"""Keys that checkpoints written before run-time settings left the config still carry; dropped on load.
(``extra`` held free-form notes that nothing wrote or read.)"""


@dataclass(frozen=True)
class IGGTConfig:
    """Architecture of an IGGT network; every field is saved beside the weights. Frozen: a built
    network's config always describes its weights (derive another one with ``get_config``)."""

    img_size: int = 518
    """Training image side in pixels; sets the size of the patch embedding's position table."""
    patch_size: int = 14
    """Side of the square image patches in pixels; input sides must be multiples of it."""
    embed_dim: int = 1024
    """Token width of the patch embedding and the aggregator; heads read 2 * embed_dim."""
    depth: int = 24
    """Aggregator blocks of each kind (frame and global attention alternate, depth of each)."""
    num_heads: int = 16
    """Attention heads in the aggregator; embed_dim / num_heads must be a multiple of 4 (2D RoPE)."""
    mlp_ratio: float = 4.0
    """Hidden width of every transformer MLP relative to its input width."""
    num_register_tokens: int = 4
    """Register tokens per frame, in the patch embedding ViT and in the aggregator."""
    patch_embed_depth: int = 24
    """Blocks of the DINOv2-style ViT that embeds patches (24 = ViT-L/14)."""
    patch_embed_num_heads: int = 16
    """Attention heads of the patch embedding ViT."""
    rope_freq: float = 100.0
    """Base frequency of the 2D rotary position embedding of the aggregator."""
    qk_norm: bool = True
    """LayerNorm on queries and keys in the aggregator's attention."""
    init_values: float = 0.01
    """Initial layer-scale value of the aggregator and camera-head blocks."""
    intermediate_layer_idx: tuple[int, ...] = (4, 11, 17, 23)
    """Aggregator blocks whose outputs the dense heads, the instance path and the track head read."""
    camera_trunk_depth: int = 4
    """Transformer blocks of the camera head's trunk (over the per-frame camera tokens)."""
    camera_num_heads: int = 16
    """Attention heads of the camera head's trunk."""
    camera_iterations: int = 4
    """Iterative refinements of the pose encoding; each one is returned in pose_enc_list."""
    dpt_features: int = 256
    """Width of the DPT heads' fusion features (also the width handed to the instance head)."""
    dpt_out_channels: tuple[int, int, int, int] = (256, 512, 1024, 1024)
    """Channels of the four DPT reassembly levels (4x, 2x, 1x and 0.5x the patch grid)."""
    instance_dim: int = 8
    """Channels of the per-pixel instance feature (unit L2 norm)."""
    instance_features: int = 256
    """Width of the instance adaptor and instance head; must equal dpt_features (cross-attention)."""
    instance_window_size: int = 8
    """Window side of the instance head's window attention."""
    instance_cross_attention_heads: int = 8
    """Heads of the instance head's global cross-attention to the point-head features."""
    instance_window_attention_heads: int = 4
    """Heads of the instance head's window attention."""
    instance_official_query_windows: bool = True
    """Cut the overlapping cross-attention's query windows as the official code does (channels-first
    memory read as channels-last, which mixes channels and positions). Needed to reproduce the
    official checkpoint; our own presets train with plain spatial windows instead."""
    enable_track: bool = True
    """Build the point-tracking head (run only when query points are given)."""
    track_features: int = 128
    """Feature width of the track head's feature extractor."""
    track_iterations: int = 4
    """Refinement iterations of the track head."""
    track_hidden_size: int = 384
    """Width of the track head's update transformer (a multiple of its 8 heads)."""
    track_corr_levels: int = 7
    """Correlation pyramid levels of the track head; images need 2 ** track_corr_levels pixels a side."""

    def __post_init__(self) -> None:
        # JSON and YAML hand lists; the frozen fields keep tuples (hashable, compare equal).
        object.__setattr__(self, "intermediate_layer_idx", tuple(int(i) for i in self.intermediate_layer_idx))
        object.__setattr__(self, "dpt_out_channels", tuple(int(c) for c in self.dpt_out_channels))
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError on a combination the network cannot build."""
        if self.embed_dim % self.num_heads or (self.embed_dim // self.num_heads) % 4:
            raise ConfigError(
                f"embed_dim {self.embed_dim} / num_heads {self.num_heads} must be a multiple of 4 "
                "(2D rotary embedding); change num_heads"
            )
        if self.embed_dim % self.patch_embed_num_heads:
            raise ConfigError(
                f"embed_dim {self.embed_dim} is not divisible by patch_embed_num_heads "
                f"{self.patch_embed_num_heads}; change patch_embed_num_heads"
            )
        if len(self.intermediate_layer_idx) != 4:
            raise ConfigError(f"intermediate_layer_idx needs 4 block indices, got {self.intermediate_layer_idx}")
        if not all(0 <= i < self.depth for i in self.intermediate_layer_idx):
            raise ConfigError(
                f"intermediate_layer_idx {self.intermediate_layer_idx} must lie in [0, depth={self.depth})"
            )
        if len(self.dpt_out_channels) != 4:
            raise ConfigError(f"dpt_out_channels needs 4 values, got {self.dpt_out_channels}")
        if self.instance_features != self.dpt_features:
            raise ConfigError(
                f"instance_features {self.instance_features} must equal dpt_features {self.dpt_features} "
                "(the instance head cross-attends to the point head's features); set both"
            )
        if self.img_size % self.patch_size:
            raise ConfigError(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> IGGTConfig:
        """Inverse of to_dict; drops the RETIRED_FIELDS of older checkpoints, other unknown fields raise ConfigError."""
        return _replace(cls(), {key: value for key, value in values.items() if key not in RETIRED_FIELDS})


PRESETS: dict[str, dict] = {
    # The official IGGT checkpoint: DINOv2 ViT-L/14 reg4 patch embedding, 24 + 24 aggregator blocks.
    "large": {},
    # Same structure, about 1/60 of the parameters: trains at 224 x 224 on one GPU.
    "small": {
        "img_size": 224,
        "embed_dim": 256,
        "depth": 6,
        "num_heads": 4,
        "patch_embed_depth": 4,
        "patch_embed_num_heads": 4,
        "intermediate_layer_idx": (1, 2, 4, 5),
        "camera_trunk_depth": 1,
        "camera_num_heads": 8,
        "dpt_features": 64,
        "dpt_out_channels": (32, 64, 128, 128),
        "instance_features": 64,
        "instance_official_query_windows": False,
        "enable_track": False,
        "track_features": 64,
        "track_hidden_size": 128,
        "track_corr_levels": 5,
    },
    # For tests: runs on a CPU in well under a second at 56 x 56.
    "tiny": {
        "img_size": 56,
        "embed_dim": 64,
        "depth": 4,
        "num_heads": 2,
        "patch_embed_depth": 1,
        "patch_embed_num_heads": 2,
        "intermediate_layer_idx": (0, 1, 2, 3),
        "camera_trunk_depth": 1,
        "camera_num_heads": 2,
        "dpt_features": 16,
        "dpt_out_channels": (8, 16, 32, 32),
        "instance_features": 16,
        "instance_window_size": 4,
        "instance_cross_attention_heads": 2,
        "instance_window_attention_heads": 2,
        "instance_official_query_windows": False,
        "enable_track": False,
        "track_features": 16,
        "track_iterations": 2,
        "track_hidden_size": 32,
        "track_corr_levels": 3,
    },
}


def get_config(name: str, **overrides) -> IGGTConfig:
    """The named preset ("large", "small", "tiny") with field overrides applied."""
    if name not in PRESETS:
        raise ConfigError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return _replace(IGGTConfig(), {**PRESETS[name], **overrides})


def _replace(config: IGGTConfig, values: dict) -> IGGTConfig:
    known = {f.name for f in dataclasses.fields(IGGTConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown IGGTConfig field(s) {unknown}; valid fields: {sorted(known)}")
    return dataclasses.replace(config, **values)
