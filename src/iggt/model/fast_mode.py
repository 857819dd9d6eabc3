"""How the trunk's global attention runs: exactly (the default) or approximately, for long inputs.

A :class:`FastMode` is a run-time choice, like the trunk's precision: it is handed to
``IGGT.forward`` per call and never saved with the weights (:mod:`iggt.model.config` holds only
what the weights need). Two families of approximation, both training-free:

- AVGGT-style (Sun et al. 2025, arXiv 2512.02541): the first global layers run frame-wise (their
  weights attend within each frame only), and the other global layers attend to a subset of keys
  and values: every frame's camera and register tokens, a strided grid of its patch tokens and,
  optionally, one mean patch token per frame. Queries stay all tokens, so every token is updated.
- FastVGGT-style token merging (Shen et al. 2025, arXiv 2509.02560): before each global
  attention, patch tokens merge into similar destination tokens of their own frame (a strided
  grid), attention runs over the fewer tokens, and each merged token takes its destination's result.

Frame 0 (the reference frame) keeps all its tokens in both when ``keep_first_frame`` is set; the
camera and register tokens are always kept.

A third, of precision rather than of tokens: FP8 global attention (queries, keys and values in
e4m3 with one scale per head, through FlashAttention-3 on Hopper; iggt.model.layers.fp8_attention).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from iggt.errors import ConfigError


@dataclass(frozen=True)
class FastMode:
    """The global-attention approximations of one forward pass; the defaults compute it exactly."""

    frame_wise_fraction: float = 0.0
    """Fraction of the global layers, counted from the first, run frame-wise (rounded to the nearest layer)."""
    kv_stride: int = 1
    """In the other global layers, keep every kv_stride-th patch row and column as keys / values (1: all)."""
    kv_mean_fill: bool = False
    """Also keep each frame's mean patch key and value: one token summing up the patches left out."""
    merge_stride: int = 1
    """Token merging: every merge_stride-th patch row and column of a frame is a destination token."""
    merge_fraction: float = 0.0
    """Token merging: this fraction of each frame's other patch tokens (the most similar to a
    destination) merge into it; 0 merges none."""
    keep_first_frame: bool = True
    """Frame 0 keeps all its keys and values and merges no tokens (it anchors the world frame)."""
    fp8_attention: bool = False
    """The global layers that are not frame-wise attend with FP8 (e4m3) inputs, scaled per head
    (FlashAttention-3 on a Hopper GPU only)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.frame_wise_fraction <= 1.0:
            raise ConfigError(f"frame_wise_fraction must lie in [0, 1], got {self.frame_wise_fraction}")
        if not 0.0 <= self.merge_fraction <= 1.0:
            raise ConfigError(f"merge_fraction must lie in [0, 1], got {self.merge_fraction}")
        for name in ("kv_stride", "merge_stride"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.subsamples_keys and self.merges:
            raise ConfigError("FastMode: choose key/value subsampling or token merging, not both in one mode")
        if self.fp8_attention and (self.subsamples_keys or self.merges):
            raise ConfigError("FastMode: FP8 attention runs over all tokens; drop key subsampling and merging with it")

    @property
    def subsamples_keys(self) -> bool:
        """True when the global layers attend to a subset of keys and values."""
        return self.kv_stride > 1 or self.kv_mean_fill

    @property
    def merges(self) -> bool:
        """True when tokens merge before the global attention."""
        return self.merge_stride > 1 and self.merge_fraction > 0

    @property
    def is_exact(self) -> bool:
        """True when the trunk computes exactly what it was trained to."""
        return self.frame_wise_fraction == 0 and not self.subsamples_keys and not self.merges and not self.fp8_attention

    def frame_wise_layers(self, depth: int) -> int:
        """How many of ``depth`` global layers, from the first, run frame-wise."""
        return math.floor(self.frame_wise_fraction * depth + 0.5)

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return dataclasses.asdict(self)


FAST_MODES: dict[str, FastMode] = {
    "exact": FastMode(),
    # AVGGT's two steps: the first third of the global layers frame-wise (8 of 24 in `large`), the
    # rest attending to 1 in 16 patch keys (a 4 x 4 grid) plus a mean token per frame. At 100 frames
    # of 518 x 518 the global attention does 1/19 of its exact FLOPs (docs/performance.md).
    "avggt": FastMode(frame_wise_fraction=1 / 3, kv_stride=4, kv_mean_fill=True),
    # AVGGT's second step alone: every global layer sees all views, through the subsampled keys
    # (1/14 of the exact attention FLOPs there); the shipped `small` keeps far closer to exact mode.
    "kv-subsample": FastMode(kv_stride=4, kv_mean_fill=True),
    # Every global layer on merged tokens: a 2 x 2 grid of destinations, 90 % of the other patches
    # merged: 434 of 1,374 tokens a frame at 518 x 518, 1/9.5 of the exact attention FLOPs.
    "merge": FastMode(merge_stride=2, merge_fraction=0.9),
    # Every token, every layer, in FP8: the attention's FLOPs unchanged, at FP8's tensor-core rate
    # (FA3 ran the trunk's global shape at 679 TFLOP/s against 541 in bf16 on an H200).
    "fp8": FastMode(fp8_attention=True),
}
"""The named fast modes; ``exact`` is the default everywhere."""


def get_fast_mode(mode: str | FastMode | None) -> FastMode:
    """The named preset (None: exact), or ``mode`` itself; ConfigError naming the choices otherwise."""
    if mode is None:
        return FAST_MODES["exact"]
    if isinstance(mode, FastMode):
        return mode
    if mode not in FAST_MODES:
        raise ConfigError(f"unknown fast mode {mode!r}; choose one of {list(FAST_MODES)}")
    return FAST_MODES[mode]


def fast_mode_name(mode: FastMode) -> str:
    """The preset name of ``mode``, or "custom" for one built by hand."""
    return next((name for name, preset in FAST_MODES.items() if preset == mode), "custom")
