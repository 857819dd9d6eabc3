"""How far apart two ``iggt eval`` runs on the same benchmark are, given its few scenes.

A benchmark of 16 scenes measures a model with the noise of which 16 scenes were drawn. Each run's
mean over scenes gets a bootstrap 95 % interval (scenes resampled with replacement), and the paired
difference of two runs (the same resampled scenes for both) gets one too: a difference whose
interval leaves out 0 is *resolved* by the benchmark; one whose interval holds 0 is not, whatever
its size. Scenes are the unit, as in ``iggt eval``'s summary (a mean over scenes).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from iggt.errors import InputError
from iggt.eval.intervals import Interval, bootstrap_mean
from iggt.eval.report import PER_SCENE_CSV


def read_per_scene(folder: Path, method: str | None = None) -> tuple[str, dict[str, dict[str, float]]]:
    """An eval folder's per_scene.csv -> (method, {scene: {metric: value}}) for ``method`` (None:
    the first method of the file, the model's); empty cells (metrics a method has not) are left out."""
    path = Path(folder) / PER_SCENE_CSV
    if not path.is_file():
        raise InputError(f"{path} does not exist; pass a folder written by `iggt eval --out`")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise InputError(f"{path} has no scenes")
    method = method or rows[0]["method"]
    scenes = {}
    for row in rows:
        if row["method"] == method:
            scenes[row["scene"]] = {key: float(value) for key, value in row.items() if _metric(key, value)}
    if not scenes:
        known = ", ".join(dict.fromkeys(row["method"] for row in rows))
        raise InputError(f"{path} has no rows of method {method!r}; it has {known}")
    return method, scenes


def _metric(key: str, value: str) -> bool:
    return key not in ("scene", "method", "num_views", "seconds") and value != ""


def compare_runs(
    first: dict[str, dict[str, float]], second: dict[str, dict[str, float]], seed: int = 0
) -> dict[str, dict[str, Interval]]:
    """Per metric both runs share: {"first", "second", "difference" (second - first, paired)}.

    The runs must cover the same scenes (the same benchmark); a metric missing for a scene in
    either run is compared over the scenes where both have it.
    """
    if set(first) != set(second):
        only = sorted(set(first) ^ set(second))[:3]
        raise InputError(f"the runs cover different scenes (e.g. {', '.join(only)}); compare runs of one benchmark")
    scenes = sorted(first)
    metrics = [key for key in first[scenes[0]] if key in second[scenes[0]]]
    result = {}
    for metric in metrics:
        shared = [s for s in scenes if _finite(first[s].get(metric)) and _finite(second[s].get(metric))]
        if not shared:
            continue
        a = np.array([first[s][metric] for s in shared])
        b = np.array([second[s][metric] for s in shared])
        result[metric] = {
            "first": bootstrap_mean(a, seed=seed),
            "second": bootstrap_mean(b, seed=seed),
            "difference": bootstrap_mean(b - a, seed=seed),
        }
    return result


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
