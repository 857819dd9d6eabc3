"""The benchmark runner: scenes in, one row of metrics per (scene, method) out.

For each scene: pick the views, preprocess the images as inference does and bring the ground
truth onto the same grid (:mod:`iggt.eval.ground_truth`), run the model once, then

- the geometry metrics of the selected tasks ("depth", "points", "cameras") on the model's row,
- the instance metrics ("instances") on one row per segmenter: the model's own instance
  extraction first, then any baseline (e.g. clustering predicted positions and colours), all on
  the same predictions, so the rows differ only in how pixels become instances;
- the open-vocabulary metrics ("semantic", scenes with class names only) on one row per labeller,
  all labelling the model's own instances (:mod:`iggt.eval.semantic`): image-text backends and
  the oracle, so the rows differ only in how instances get classes.

The model and the segmenters are passed in as callables, so this module imports no model code
and tests can feed exact predictions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from iggt.errors import ConfigError
from iggt.eval.alignment import POINT_ALIGNMENTS
from iggt.eval.cameras import camera_metrics
from iggt.eval.depth import DEPTH_ALIGNMENTS, depth_metrics
from iggt.eval.ground_truth import GroundTruth, prepare_views, select_views
from iggt.eval.instances import instance_metrics
from iggt.eval.points import point_map_metrics
from iggt.eval.semantic import Labeller, class_map, semantic_scores
from iggt.structures.predictions import Predictions

TASKS = ("depth", "points", "cameras", "instances", "semantic")
Predictor = Callable[[torch.Tensor], Predictions]
"""(S, 3, H, W) float images in [0, 1] -> Predictions at H x W."""
Segmenter = Callable[[Predictions], np.ndarray]
"""Predictions -> (S, H, W) integer instance IDs, 0 = none."""


@dataclass
class BenchmarkConfig:
    """What the runner evaluates and how."""

    tasks: tuple[str, ...] = TASKS[:4]
    """Metric groups, any of "depth", "points", "cameras", "instances", "semantic"."""

    views: int | None = None
    """Views per scene, spread evenly over its frames (None: all frames)."""

    max_scenes: int | None = None
    """Evaluate only the first N scenes in sorted order (None: all)."""

    img_size: int = 518
    """Network input width ("crop") or side ("pad"); the model's own size by default in the CLI."""

    patch_size: int = 14
    """The model's patch size: network heights are multiples of it."""

    preprocess_mode: str = "crop"
    """"crop" or "pad", as in :func:`iggt.inference.preprocess.preprocess_images`."""

    depth_alignment: str = "median"
    """Per-map depth alignment: "median" (the paper), "scale_shift" or "none"."""

    point_alignment: str = "sim3"
    """Point-map alignment to ground truth: "sim3", "se3", "scale" or "none"."""

    max_points: int | None = 200_000
    """Points per scene for the nearest-neighbour metrics (random, seeded); None: every valid pixel."""

    absent_views: str = "skip"
    """How T-mIoU treats views where the GT object is absent: "skip" or "penalise"."""

    seed: int = 0
    """Seed of the point subsample."""

    voxel_size: float = 0.05
    """Voxel edge of the 3D semantic metrics, in ground-truth units."""

    def __post_init__(self) -> None:
        self.tasks = tuple(self.tasks)
        unknown = [task for task in self.tasks if task not in TASKS]
        if unknown or not self.tasks:
            raise ConfigError(f"unknown or no tasks {list(unknown) or []}; choose from {','.join(TASKS)}")
        choices = {
            "preprocess_mode": ("crop", "pad"),
            "depth_alignment": DEPTH_ALIGNMENTS,
            "point_alignment": POINT_ALIGNMENTS,
            "absent_views": ("skip", "penalise"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"BenchmarkConfig.{name}={getattr(self, name)!r}; choose one of {allowed}")
        for name in ("views", "max_scenes", "max_points"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"BenchmarkConfig.{name}={value} must be at least 1 (or None for all)")


def geometry_metrics(predictions: Predictions, truth: GroundTruth, config: BenchmarkConfig) -> dict[str, float]:
    """The depth, point and camera metrics selected in ``config.tasks`` for one scene."""
    result: dict[str, float] = {}
    if "depth" in config.tasks:
        result.update(depth_metrics(predictions.depth, truth.depth, truth.valid, config.depth_alignment))
    if "points" in config.tasks:
        points = point_map_metrics(
            predictions.world_points,
            truth.world_points,
            truth.valid,
            config.point_alignment,
            config.max_points,
            config.seed,
        )
        result.update({key: value for key, value in points.items() if key != "alignment_scale"})
    if "cameras" in config.tasks and len(truth.extrinsic) >= 2:
        result.update(camera_metrics(predictions.extrinsic, truth.extrinsic))
    return result


def segmentation_metrics(labels: np.ndarray, truth: GroundTruth, config: BenchmarkConfig) -> dict[str, float]:
    """T-mIoU, T-SR, ID consistency and object counts of one method's (S, H, W) instance labels."""
    result = instance_metrics(np.asarray(labels), truth.instance_ids, config.absent_views)
    result["num_predicted"] = float(len(np.setdiff1d(np.unique(labels), [0])))
    return result


def evaluate_scene(
    scene,
    name: str,
    predict: Predictor,
    segmenters: dict[str, Segmenter],
    config: BenchmarkConfig,
    labellers: dict[str, Labeller] | None = None,
) -> list[dict]:
    """Rows of one scene: the first segmenter's row carries the geometry metrics too.

    Args:
        scene: an :class:`iggt.structures.scene.Scene`.
        name: the scene's name in the report.
        predict: the model as a :data:`Predictor`.
        segmenters: {method name: :data:`Segmenter`}, the model's own method first; at least one
            when "instances" is a task, otherwise the first name still labels the geometry row.
        labellers: {row name: :data:`Labeller`} for the "semantic" task, applied to the first
            segmenter's instances; scenes without class names get no semantic rows.
    """
    views = select_views(len(scene.images), config.views)
    images, truth = prepare_views(scene, views, config.img_size, config.patch_size, config.preprocess_mode)
    start = time.perf_counter()
    predictions = predict(images)
    inference_seconds = time.perf_counter() - start
    rows = []
    model_instances = None
    for position, (method, segment) in enumerate(segmenters.items()):
        if position > 0 and "instances" not in config.tasks:
            break  # a baseline row has nothing to report without instance metrics
        row = {"scene": name, "method": method, "num_views": len(views)}
        start = time.perf_counter()
        if position == 0:
            row.update(geometry_metrics(predictions, truth, config))
        if "instances" in config.tasks or (position == 0 and "semantic" in config.tasks):
            labels = np.asarray(segment(predictions))
            if position == 0:
                model_instances = labels  # the semantic rows label the model's own instances
            if "instances" in config.tasks:
                row.update(segmentation_metrics(labels, truth, config))
        row["seconds"] = time.perf_counter() - start + (inference_seconds if position == 0 else 0.0)
        rows.append(row)
    if "semantic" in config.tasks and truth.class_ids is not None and getattr(scene, "class_names", None):
        rows += semantic_rows(predictions, model_instances, truth, scene.class_names, labellers or {}, config, name)
    return rows


def semantic_rows(
    predictions: Predictions,
    instance_labels: np.ndarray,
    truth: GroundTruth,
    class_names: dict[int, str],
    labellers: dict[str, Labeller],
    config: BenchmarkConfig,
    name: str,
) -> list[dict]:
    """One row per labeller: 2D and 3D mIoU / mAcc over the scene's named classes."""
    label_set = sorted(class_names)
    rows = []
    for method, labeller in labellers.items():
        start = time.perf_counter()
        classes = class_map(instance_labels, labeller(predictions, instance_labels, truth, class_names))
        row = {"scene": name, "method": method, "num_views": len(instance_labels)}
        scores = semantic_scores(
            classes, predictions.world_points, truth, label_set, config.point_alignment, config.voxel_size
        )
        row.update(scores)
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
    return rows


def run_benchmark(
    scene_dirs: Sequence[Path],
    read_scene: Callable[[Path], object],
    predict: Predictor,
    segmenters: dict[str, Segmenter],
    config: BenchmarkConfig,
    progress: bool = True,
    labellers: dict[str, Labeller] | None = None,
) -> list[dict]:
    """Evaluate every scene (the first ``config.max_scenes``) and return all rows in scene order."""
    if not segmenters:
        raise ConfigError("run_benchmark needs at least one segmenter (the model's method name labels its row)")
    selected: Iterable[Path] = list(scene_dirs)[: config.max_scenes]
    rows: list[dict] = []
    for scene_dir in tqdm(selected, desc="eval", unit="scene", disable=not progress):
        scene = read_scene(scene_dir)
        rows.extend(evaluate_scene(scene, Path(scene_dir).name, predict, segmenters, config, labellers))
    return rows
