"""Training samples from scene folders on disk (the scene format), in the training batch contract.

Each item is one sample of ``views`` frames of one scene: frames chosen to overlap (measured
co-visibility) or as a strided run, resized and cropped to the model's resolution with the
intrinsics updated, then normalised like every training batch. Items have shapes (S, ...);
``torch.utils.data.default_collate`` stacks them into (B, S, ...) batches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from iggt.data.batch import build_training_batch
from iggt.data.transforms import resize_and_crop
from iggt.data.view_sampling import covisibility, sample_overlapping_views, sample_sequential_views
from iggt.errors import ConfigError, InputError
from iggt.io.scene_format import list_scenes, read_geometry, read_manifest, read_scene

VIEW_SELECTIONS = ("overlap", "sequential")


class SceneFolderDataset(Dataset):
    """Samples of ``views`` frames from every scene folder under ``root``.

    Args:
        root: a folder of scene folders (or one scene folder).
        views: frames per sample (S).
        image_size: (H, W) the samples are resized and cropped to.
        view_selection: "overlap" (frames that see the anchor's surfaces) or "sequential".
        min_overlap: co-visibility an "overlap" frame needs with the anchor.
        samples_per_scene: items per scene and epoch.
        random_crop: crop at a random position instead of the centre.
        seed: makes the choice of frames and crops reproducible; vary ``set_epoch`` per epoch.
    """

    def __init__(
        self,
        root: str | Path,
        views: int,
        image_size: tuple[int, int],
        *,
        view_selection: str = "overlap",
        min_overlap: float = 0.1,
        samples_per_scene: int = 1,
        random_crop: bool = False,
        seed: int = 0,
    ) -> None:
        if view_selection not in VIEW_SELECTIONS:
            raise ConfigError(f"view_selection must be one of {VIEW_SELECTIONS}, got {view_selection!r}")
        if views < 1 or samples_per_scene < 1:
            raise ConfigError(f"views and samples_per_scene must be >= 1, got {views}, {samples_per_scene}")
        self.scenes = list_scenes(root)
        if not self.scenes:
            raise InputError(f"no scene folders (with scene.json) under {root}; write some with `iggt synth`")
        self.frames = [read_manifest(scene).frames for scene in self.scenes]
        short = [(s, len(f)) for s, f in zip(self.scenes, self.frames, strict=True) if len(f) < views]
        if short:
            raise ConfigError(f"scene {short[0][0]} has {short[0][1]} frames but views={views}; lower views")
        self.views, self.image_size = views, tuple(image_size)
        self.view_selection, self.min_overlap = view_selection, min_overlap
        self.samples_per_scene, self.random_crop, self.seed = samples_per_scene, random_crop, seed
        self.epoch = 0
        self._overlap: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.scenes) * self.samples_per_scene

    def set_epoch(self, epoch: int) -> None:
        """Draw different frames and crops in each epoch (same ones for the same epoch)."""
        self.epoch = epoch

    def overlap(self, scene_index: int) -> np.ndarray:
        """(N, N) co-visibility of the scene's frames, computed once per scene."""
        if scene_index not in self._overlap:
            depth, intrinsic, extrinsic = (torch.from_numpy(a) for a in read_geometry(self.scenes[scene_index]))
            self._overlap[scene_index] = covisibility(depth, intrinsic, extrinsic).numpy()
        return self._overlap[scene_index]

    def choose_frames(self, scene_index: int, rng: np.random.Generator) -> list[str]:
        names = self.frames[scene_index]
        if self.view_selection == "overlap":
            picks = sample_overlapping_views(self.overlap(scene_index), self.views, rng, self.min_overlap)
        else:
            picks = sample_sequential_views(len(names), self.views, rng)
        return [names[i] for i in picks]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        scene_index = index % len(self.scenes)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        scene = read_scene(self.scenes[scene_index], self.choose_frames(scene_index, rng))
        crop = tuple(rng.random(2)) if self.random_crop else (0.5, 0.5)
        class_ids = scene.class_ids if scene.class_ids is not None else np.zeros_like(scene.instance_ids)
        images, depth, (instance_ids, class_ids), intrinsic = resize_and_crop(
            torch.from_numpy(scene.images),
            torch.from_numpy(scene.depth),
            [torch.from_numpy(scene.instance_ids), torch.from_numpy(class_ids)],
            torch.from_numpy(scene.intrinsic),
            self.image_size,
            crop,
        )
        batch = build_training_batch(
            images[None],
            depth[None],
            intrinsic[None],
            torch.from_numpy(scene.extrinsic)[None],
            instance_ids[None],
            class_ids[None],
        )
        return {key: value[0] for key, value in batch.items()}
