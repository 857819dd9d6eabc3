"""An endless stream of fresh procedural training batches rendered directly on the training device.

Each step renders ``batch_size`` new scenes of ``num_views`` views and yields one batch in the
training batch contract (iggt.data.batch). The stream's position is (base_seed, step): the scenes
of a step depend on nothing else, so a stream restored with ``load_state_dict`` continues exactly
where it stopped, and scene seeds never fall in the range reserved for benchmarks.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import torch
from torch.utils.data import IterableDataset

from iggt.data.batch import build_training_batch
from iggt.errors import ConfigError
from iggt.synth.camera_effects import CameraEffectsConfig, apply_camera_effects, sample_effects
from iggt.synth.config import RenderConfig, SceneConfig
from iggt.synth.generate import render_prepared
from iggt.synth.prepare import SceneRequest, prepare_scenes
from iggt.synth.seeds import derive_training_seed


@dataclass
class SyntheticStreamConfig:
    """What the synthetic training stream renders."""

    num_views: int = 8
    """Views per scene (S)."""
    image_size: tuple[int, int] = (224, 224)
    """(H, W) of every view."""
    batch_size: int = 8
    """Scenes per batch (B)."""
    base_seed: int = 0
    """Seed of the whole stream; scene seeds derive from it and the running scene index."""
    scene: SceneConfig = field(default_factory=SceneConfig)
    """Rooms, objects and camera trajectories."""
    render: RenderConfig = field(default_factory=RenderConfig)
    """Supersampling, shadows, chunking and compilation."""
    effects: CameraEffectsConfig = field(default_factory=CameraEffectsConfig)
    """Camera effects on the rendered views (off by default; ``preset: realistic`` turns on a mix)."""
    prepare_workers: int = 0
    """Worker processes drawing layouts and cameras ahead of the renderer (0 = in this process)."""
    prefetch_steps: int = 4
    """Steps prepared ahead when ``prepare_workers`` > 0."""

    def __post_init__(self) -> None:
        self.image_size = tuple(self.image_size)  # YAML gives lists
        if self.num_views < 1 or self.batch_size < 1:
            raise ConfigError(f"num_views and batch_size must be >= 1, got {self.num_views}, {self.batch_size}")
        if min(self.image_size) < 1 or len(self.image_size) != 2:
            raise ConfigError(f"image_size must be (H, W) with positive sides, got {self.image_size}")
        if self.base_seed < 0 or self.prepare_workers < 0 or self.prefetch_steps < 1:
            raise ConfigError("base_seed and prepare_workers must be >= 0 and prefetch_steps >= 1")


class SyntheticSceneStream(IterableDataset):
    """Yields training batches (dict of tensors on ``device``) forever, starting at ``step``.

    Use it directly (``for batch in stream``) or in a DataLoader with ``batch_size=None`` and
    ``num_workers=0``: it already batches, and rendering belongs on the training device.
    Under data parallelism give every rank its ``rank`` and ``world_size``; ranks then render
    disjoint scenes of the same step.
    """

    def __init__(
        self, config: SyntheticStreamConfig, device: torch.device | str = "cpu", rank: int = 0, world_size: int = 1
    ) -> None:
        super().__init__()
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank must be in [0, world_size), got rank={rank}, world_size={world_size}")
        self.config = config
        self.device = torch.device(device)
        self.rank, self.world_size = rank, world_size
        self.step = 0

    def scene_seeds(self, step: int) -> list[int]:
        """Seeds of the scenes this rank renders at ``step``."""
        first = (step * self.world_size + self.rank) * self.config.batch_size
        return [derive_training_seed(self.config.base_seed, first + b) for b in range(self.config.batch_size)]

    def _requests(self, step: int) -> list[SceneRequest]:
        config = self.config
        return [SceneRequest(seed, config.num_views, config.image_size) for seed in self.scene_seeds(step)]

    def render_batch(self, prepared: list) -> dict[str, torch.Tensor]:
        """Render prepared (layout, cameras) pairs into one training batch on the device."""
        config = self.config
        views = render_prepared(prepared, config.image_size, config.render, self.device)
        intrinsic = torch.stack([torch.as_tensor(c.intrinsic, dtype=torch.float32) for _, c in prepared])
        extrinsic = torch.stack([torch.as_tensor(c.extrinsic, dtype=torch.float32) for _, c in prepared])
        effects = config.effects.enabled
        batch = build_training_batch(
            # 8-bit like every image read from disk; with effects, quantised after them (sensor order)
            views.rgb if effects else (views.rgb * 255).round().to(torch.uint8),
            views.depth,
            intrinsic.to(self.device),
            extrinsic.to(self.device),
            views.instance_ids,
            views.class_ids,
        )
        if not effects:
            return batch
        # Seeded by each scene's own seed: the same scene gets the same camera wherever it is batched.
        parameters = sample_effects(config.effects, [layout.seed for layout, _ in prepared], config.num_views)
        return apply_camera_effects(batch, parameters)

    def batch_at(self, step: int) -> dict[str, torch.Tensor]:
        """The batch of ``step``, independent of the stream's position."""
        return self.render_batch(prepare_scenes(self._requests(step), self.config.scene))

    def _prepared(self) -> Iterator[list]:
        """Prepared scenes of steps self.step, self.step + 1, ..., from workers when configured."""
        if self.config.prepare_workers == 0:
            while True:
                yield prepare_scenes(self._requests(self.step), self.config.scene)
        context = multiprocessing.get_context("spawn")  # forking a process that holds CUDA is unsafe
        with ProcessPoolExecutor(self.config.prepare_workers, mp_context=context) as pool:
            pending: deque = deque()
            next_step = self.step
            while True:
                while len(pending) < self.config.prefetch_steps:
                    pending.append(pool.submit(prepare_scenes, self._requests(next_step), self.config.scene))
                    next_step += 1
                yield pending.popleft().result()

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for prepared in self._prepared():
            batch = self.render_batch(prepared)
            self.step += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """The stream's position: everything needed to continue it exactly."""
        return {"base_seed": self.config.base_seed, "step": self.step}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a position saved by ``state_dict`` (restores its base seed too)."""
        if state.get("step", -1) < 0 or state.get("base_seed", -1) < 0:
            raise ConfigError(f"stream state needs non-negative 'base_seed' and 'step', got {state}")
        self.config.base_seed = int(state["base_seed"])
        self.step = int(state["step"])
