"""Numeric checks of a run config: every float finite, every number in the range a run can use.

``check_numbers(config)`` walks the nested dataclasses of a RunConfig, so a float field added
later is checked for NaN and infinity without being listed here; ``RANGES`` adds the bounds.
"""

from __future__ import annotations

import dataclasses
import math
import operator

from iggt.errors import ConfigError

# key (or key prefix ending in ".") -> (comparison, bound); "loss." covers every loss setting.
RANGES: dict[str, tuple[str, float]] = {
    "optim.lr": (">", 0.0),
    "optim.trunk_lr_scale": (">=", 0.0),
    "optim.weight_decay": (">=", 0.0),
    "optim.min_lr_ratio": (">=", 0.0),
    "optim.grad_clip": (">=", 0.0),
    "optim.warmup_steps": (">=", 0),
    "loss.": (">=", 0.0),
    "data.num_workers": (">=", 0),
    "train.max_time_minutes": (">", 0.0),
    "train.log_interval": (">=", 1),
    "train.checkpoint_interval": (">=", 1),
    "train.keep_checkpoints": (">=", 1),
    "train.transfer_part_mb": (">", 0.0),
}
SOURCE_WEIGHT = ("data.sources.", ".weight")
COMPARE = {">": operator.gt, ">=": operator.ge}


def check_numbers(config) -> None:
    """Raise ConfigError naming the first number of ``config`` (a RunConfig) no run can use."""
    for key, value in _numbers(config, ""):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key}={value!r} must be a finite number{_bound_text(key)}; fix it in the config")
        bound = _bound(key)
        if bound and not COMPARE[bound[0]](value, bound[1]):
            kind = "a finite number " if isinstance(value, float) else ""
            raise ConfigError(f"{key}={value!r} must be {kind}{bound[0]} {bound[1]:g}; fix it in the config")
    betas = config.optim.betas
    if not all(math.isfinite(b) and 0 <= b < 1 for b in betas):
        raise ConfigError(f"optim.betas={list(betas)} must be two numbers in [0, 1) (AdamW's averaging factors)")
    if not config.optim.min_lr_ratio <= 1:
        raise ConfigError(f"optim.min_lr_ratio={config.optim.min_lr_ratio!r} must be in [0, 1] (a fraction of lr)")


def _numbers(node, key: str):
    """(dotted key, value) of every int and float below the dataclass ``node`` (lists indexed)."""
    if dataclasses.is_dataclass(node):
        for field in dataclasses.fields(node):
            yield from _numbers(getattr(node, field.name), f"{key}.{field.name}" if key else field.name)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _numbers(item, f"{key}.{index}")
    elif isinstance(node, int | float) and not isinstance(node, bool):
        yield key, node


def _bound(key: str) -> tuple[str, float] | None:
    if key.startswith(SOURCE_WEIGHT[0]) and key.endswith(SOURCE_WEIGHT[1]):
        return (">=", 0.0)
    if key in RANGES:
        return RANGES[key]
    return next((bound for prefix, bound in RANGES.items() if prefix.endswith(".") and key.startswith(prefix)), None)


def _bound_text(key: str) -> str:
    bound = _bound(key)
    return f" {bound[0]} {bound[1]:g}" if bound else ""
