"""Hand-built training batches of the batch contract (docs/architecture.md), made with iggt.geometry,
and the tiny run config the trainer tests share."""

from __future__ import annotations

import math

import torch

from iggt.geometry import depth_to_world_points
from iggt.train.config import load_run_config


def _rotation_y(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def make_batch(batch_size: int = 1, views: int = 2, height: int = 28, width: int = 28, seed: int = 0) -> dict:
    """A batch of the training contract: smooth random depth, cameras rotating about y, world points
    from iggt.geometry, instance IDs = bins of the world x coordinate (so the same 3D region has the
    same ID in every view), images coloured by ID plus noise; normalised to mean point distance 1."""
    generator = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    intrinsic = torch.tensor([[width, 0.0, width / 2], [0.0, height, height / 2], [0.0, 0.0, 1.0]])
    intrinsic = intrinsic.expand(batch_size, views, 3, 3).clone()
    extrinsic = torch.zeros(batch_size, views, 3, 4)
    for b in range(batch_size):
        for s in range(views):
            angle = 0.0 if s == 0 else 0.3 * (rand(1).item() - 0.5)
            extrinsic[b, s, :, :3] = _rotation_y(angle)
            extrinsic[b, s, :, 3] = 0.0 if s == 0 else 0.2 * (rand(3) - 0.5)
    rows = torch.linspace(0, 1, height)[:, None]
    cols = torch.linspace(0, 1, width)[None]
    phase = rand(batch_size, views, 1, 1) * 6
    depth = 2.0 + 0.3 * torch.sin(3 * cols + phase) + 0.2 * rows + 0.05 * rand(batch_size, views, height, width)
    world_points = depth_to_world_points(depth, intrinsic, extrinsic)
    scale = world_points.norm(dim=-1).mean(dim=(1, 2, 3))[:, None, None, None]
    depth, world_points = depth / scale, world_points / scale[..., None]
    extrinsic[..., 3] = extrinsic[..., 3] / scale[..., 0]
    instance_ids = (((world_points[..., 0] + 2.0) * 4).floor().long() % 4) + 1
    valid_mask = torch.ones(batch_size, views, height, width, dtype=torch.bool)
    valid_mask[:, :, :3, :3] = False
    palette = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.8, 0.2], [0.2, 0.3, 0.9], [0.9, 0.9, 0.1]])
    images = palette[instance_ids - 1].permute(0, 1, 4, 2, 3) * 0.8 + 0.2 * rand(batch_size, views, 3, height, width)
    return {
        "images": images.clamp(0, 1),
        "depth": depth * valid_mask,
        "extrinsic": extrinsic,
        "intrinsic": intrinsic,
        "world_points": world_points,
        "valid_mask": valid_mask,
        "instance_ids": instance_ids,
        "class_ids": instance_ids % 3,
    }


class HandBuiltSource:
    """A batch source for tests: batch i is make_batch(seed=seed * 1000 + i); position = i."""

    def __init__(self, seed: int = 0, fixed: bool = False, **batch_options) -> None:
        self.seed, self.fixed, self.batch_options = seed, fixed, batch_options
        self.index = 0

    def next_batch(self) -> dict:
        batch = make_batch(seed=self.seed * 1000 + (0 if self.fixed else self.index), **self.batch_options)
        self.index += 1
        return batch

    def state_dict(self) -> dict:
        return {"index": self.index}

    def load_state_dict(self, state: dict) -> None:
        self.index = state["index"]


def tiny_config(output_dir, *overrides):
    """The tiny preset on 2 views of 28 x 28 on the CPU, 4 steps, a log line per step."""
    return load_run_config(
        None,
        [
            f"train.output_dir={output_dir}",
            "train.steps=4",
            "train.log_interval=1",
            "train.checkpoint_interval=100",
            "train.device=cpu",
            "optim.warmup_steps=1",
            "optim.lr=1e-3",
            "data.views=2",
            *overrides,
        ],
    )
