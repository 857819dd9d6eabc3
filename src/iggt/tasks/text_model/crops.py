"""Training and held-out crops of engine instances: render scenes, cut every visible instance out.

For each view and each instance with at least ``min_pixels`` pixels, the crop is cut as inference
cuts it (:func:`iggt.tasks.open_vocab.instance_crop`), with the context drawn from
``context_range`` and the box shifted by up to ``shift`` of its size (predicted masks are not
exact), then resized to the network input. Attributes come from
:func:`iggt.tasks.text_model.attributes.scene_attributes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from iggt.synth.config import SceneConfig
from iggt.synth.generate import render_scenes
from iggt.tasks.open_vocab import instance_crop
from iggt.tasks.text_model.attributes import scene_attributes
from iggt.tasks.text_model.network import resized_crop as _resized_crop


@dataclass
class CropSet:
    """N crops: images (N, INPUT_SIZE, INPUT_SIZE, 3) uint8, attributes (N, 4) int64
    (class, colour, size, shape; -1 = none), scene (N,) int64 index of the seed they came from."""

    images: np.ndarray
    attributes: np.ndarray
    scene: np.ndarray


def _shifted_mask_box(mask: np.ndarray, shift: float, rng: np.random.Generator) -> np.ndarray:
    """A mask whose box is the instance's box moved by up to ``shift`` of its size (crops jitter)."""
    rows, columns = np.nonzero(mask)
    top, bottom, left, right = rows.min(), rows.max() + 1, columns.min(), columns.max() + 1
    dy = int(round(rng.uniform(-shift, shift) * (bottom - top)))
    dx = int(round(rng.uniform(-shift, shift) * (right - left)))
    height, width = mask.shape
    box = np.zeros_like(mask)
    box[
        np.clip(top + dy, 0, height - 1) : np.clip(bottom + dy, 1, height),
        np.clip(left + dx, 0, width - 1) : np.clip(right + dx, 1, width),
    ] = True
    return box


def cut_crops(
    seeds: Sequence[int],
    num_views: int,
    image_size: tuple[int, int],
    rng: np.random.Generator,
    min_pixels: int = 24,
    context_range: tuple[float, float] = (0.25, 0.25),
    shift: float = 0.0,
    passes: int = 1,
    scene_config: SceneConfig | None = None,
) -> CropSet:
    """Render ``seeds`` on the CPU and cut every instance of every view ``passes`` times (module docstring)."""
    images, attributes, owners = [], [], []
    for index, scene in enumerate(render_scenes(list(seeds), num_views, image_size, scene_config, scenes_per_batch=2)):
        table = scene_attributes(scene)
        for view in range(len(scene.images)):
            for instance_id, values in table.items():
                mask = scene.instance_ids[view] == instance_id
                if mask.sum() < min_pixels:
                    continue
                for _ in range(passes):
                    box = _shifted_mask_box(mask, shift, rng) if shift > 0 else mask
                    images.append(
                        _resized_crop(instance_crop(scene.images[view], box, float(rng.uniform(*context_range))))
                    )
                    attributes.append(values)
                    owners.append(index)
    return CropSet(np.stack(images), np.asarray(attributes, np.int64), np.asarray(owners, np.int64))
