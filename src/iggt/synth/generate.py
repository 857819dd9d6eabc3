"""Seeds in, finished scenes out: layout, cameras and rendering of whole scenes in batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from iggt.errors import InputError
from iggt.structures.scene import Scene
from iggt.synth.cameras import CameraSet
from iggt.synth.catalog import CLASS_NAMES
from iggt.synth.config import RenderConfig, SceneConfig
from iggt.synth.layout import SceneLayout
from iggt.synth.prepare import SceneRequest, prepare_scene
from iggt.synth.renderer import RenderedViews, SceneBatch, render_views

GENERATOR_VERSION = 2
"""Bumped whenever the same seed would give a different scene; stored in every scene's metadata."""


def render_prepared(
    prepared: Sequence[tuple[SceneLayout, CameraSet]],
    image_size: tuple[int, int],
    render_config: RenderConfig,
    device: torch.device | str,
) -> RenderedViews:
    """Render scenes with the same view count and image size in one batch on ``device``."""
    batch = SceneBatch.from_layouts([layout for layout, _ in prepared], device)
    intrinsic = torch.as_tensor(np.stack([c.intrinsic for _, c in prepared]), dtype=torch.float32).to(device)
    extrinsic = torch.as_tensor(np.stack([c.extrinsic for _, c in prepared]), dtype=torch.float32).to(device)
    return render_views(batch, intrinsic, extrinsic, image_size, render_config)


def _to_scene(
    layout: SceneLayout, cameras: CameraSet, views: RenderedViews, row: int, view_indices: Sequence[int] | None
) -> Scene:
    rgb = (views.rgb[row] * 255).round().to(torch.uint8)
    return Scene(
        images=rgb.cpu().numpy(),
        depth=views.depth[row].cpu().numpy(),
        intrinsic=cameras.intrinsic.astype(np.float32),
        extrinsic=cameras.extrinsic.astype(np.float32),
        instance_ids=views.instance_ids[row].to(torch.int32).cpu().numpy(),
        class_ids=views.class_ids[row].to(torch.int32).cpu().numpy(),
        frame_names=[f"{i:06d}" for i in (range(len(cameras.intrinsic)) if view_indices is None else view_indices)],
        instances=dict(layout.instances),
        class_names={i + 1: name for i, name in enumerate(CLASS_NAMES)},
        metadata={
            "generator": "iggt.synth",
            "generator_version": GENERATOR_VERSION,
            "seed": layout.seed,
            "trajectory": cameras.trajectory,
            "room_size": [round(float(x), 6) for x in layout.room_size],
            "has_ceiling": layout.has_ceiling,
        },
    )


def render_scenes(
    seeds: Sequence[int],
    num_views: int,
    image_size: tuple[int, int],
    scene_config: SceneConfig | None = None,
    render_config: RenderConfig | None = None,
    device: torch.device | str = "cpu",
    scenes_per_batch: int = 4,
    view_indices: Sequence[int] | None = None,
) -> Iterator[Scene]:
    """Render one Scene per seed, ``scenes_per_batch`` at a time, in the order of ``seeds``.

    ``view_indices`` renders only those of each scene's ``num_views`` cameras (frames keep their
    index in the names): each pixel depends on its own camera alone, so they come out as in the
    full render, for a fraction of its time.
    """
    scene_config = scene_config or SceneConfig()
    render_config = render_config or RenderConfig()
    if view_indices is not None and not all(0 <= index < num_views for index in view_indices):
        raise InputError(f"view_indices {list(view_indices)} must each be in 0..{num_views - 1}, one per view kept")
    for begin in range(0, len(seeds), scenes_per_batch):
        prepared = [
            prepare_scene(SceneRequest(seed, num_views, image_size), scene_config)
            for seed in seeds[begin : begin + scenes_per_batch]
        ]
        if view_indices is not None:
            prepared = [(layout, cameras.select(view_indices)) for layout, cameras in prepared]
        views = render_prepared(prepared, image_size, render_config, device)
        for row, (layout, cameras) in enumerate(prepared):
            yield _to_scene(layout, cameras, views, row, view_indices)
