"""The host side of making a scene: all random draws (layout and cameras), without torch.

Kept free of torch so that worker processes preparing scenes ahead of the renderer start fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from iggt.synth.cameras import CameraSet, sample_cameras
from iggt.synth.config import SceneConfig
from iggt.synth.layout import SceneLayout, generate_layout


@dataclass(frozen=True)
class SceneRequest:
    """What to render: a seed and the views wanted of it."""

    seed: int
    num_views: int
    image_size: tuple[int, int]


def prepare_scene(request: SceneRequest, scene_config: SceneConfig) -> tuple[SceneLayout, CameraSet]:
    """The layout and cameras of one scene."""
    layout = generate_layout(request.seed, scene_config)
    return layout, sample_cameras(layout, request.num_views, request.image_size, scene_config)


def prepare_scenes(requests: Sequence[SceneRequest], scene_config: SceneConfig) -> list[tuple[SceneLayout, CameraSet]]:
    """``prepare_scene`` for several requests (one task for a worker process)."""
    return [prepare_scene(request, scene_config) for request in requests]
