"""Which parameters train, and the optimiser and learning-rate schedule that move them."""

from __future__ import annotations

import math

import torch
from torch import nn

from iggt.errors import ConfigError
from iggt.train.config import FreezeConfig, OptimConfig

TRUNK = ("aggregator",)
GEOMETRY_HEADS = ("camera_head", "depth_head", "point_head")
INSTANCE_MODULES = ("part_adaptor", "part_head")
# No loss here trains point tracking; frozen so DDP sees no parameter without a gradient.
ALWAYS_FROZEN = ("track_head",)


def frozen_modules(config: FreezeConfig) -> tuple[str, ...]:
    """Top-level module names whose parameters stay fixed under ``config``."""
    frozen = list(ALWAYS_FROZEN)
    if config.trunk or config.instance_only:
        frozen += TRUNK
    if config.geometry_heads or config.instance_only:
        frozen += GEOMETRY_HEADS
    return tuple(frozen)


def apply_freeze(model: nn.Module, config: FreezeConfig) -> None:
    """Turn requires_grad off under every frozen module. Parameters the model itself keeps fixed
    (e.g. DINOv2's unused mask token) stay fixed; call once, on a freshly built model."""
    frozen = frozen_modules(config)
    for name, parameter in model.named_parameters():
        if name.split(".")[0] in frozen:
            parameter.requires_grad_(False)
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"freeze options {config} leave no parameter to train; unfreeze a module")


def parameter_groups(model: nn.Module, config: OptimConfig) -> list[dict]:
    """AdamW groups: trunk vs heads (trunk lr = lr * trunk_lr_scale), each split into weight-decayed
    matrices and non-decayed vectors (biases, norms, tokens of one row). Frozen parameters are left out."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        is_trunk = name.split(".")[0] in TRUNK
        decays = parameter.ndim >= 2
        groups.setdefault((is_trunk, decays), []).append(parameter)
    result = []
    for (is_trunk, decays), parameters in sorted(groups.items()):
        result.append(
            {
                "params": parameters,
                "lr": config.lr * (config.trunk_lr_scale if is_trunk else 1.0),
                "weight_decay": config.weight_decay if decays else 0.0,
                "name": f"{'trunk' if is_trunk else 'heads'}_{'decay' if decays else 'no_decay'}",
            }
        )
    return result


def build_optimizer(model: nn.Module, config: OptimConfig, fused: bool = False) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; ``fused`` selects the single-kernel CUDA implementation."""
    return torch.optim.AdamW(parameter_groups(model, config), betas=tuple(config.betas), fused=fused)


class WarmupCosine:
    """Learning-rate factor: linear from 1/warmup to 1 over ``warmup_steps``, then cosine from 1 to
    ``min_ratio`` at ``total_steps``. An object (not a lambda) so LambdaLR can save it."""

    def __init__(self, warmup_steps: int, total_steps: int, min_ratio: float) -> None:
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.min_ratio = min_ratio

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step schedule (call scheduler.step() after every optimiser step)."""
    factor = WarmupCosine(config.warmup_steps, total_steps, config.min_lr_ratio)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
