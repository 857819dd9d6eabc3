"""Open-vocabulary rows of the benchmark: class maps from predicted instances, scored in 2D and 3D.

A *labeller* gives every predicted instance one class ID of the dataset (through an image-text
backend, or the oracle below); the class map paints each instance's pixels with its class, and
:func:`semantic_scores` measures it with the metrics of :mod:`iggt.eval.open_vocab`:

- 2D: per view, over all evaluated pixels of the scene (mIoU, mAcc);
- 3D: the predicted point map aligned to the ground truth (Sim(3) by default, fitted on the valid
  pixels as the point metrics do), its labelled points and the ground-truth points voxelised.

The oracle gives each predicted instance the ground-truth class most of its pixels carry: the best
one class per instance can do, so it measures the masks alone; the gap to a backend's row is
recognition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from iggt.eval.alignment import align_points
from iggt.eval.open_vocab import semantic_metrics, semantic_metrics_3d
from iggt.structures.predictions import Predictions

Labeller = Callable[[Predictions, np.ndarray, object, dict[int, str]], dict[int, int]]
"""(predictions, (S, H, W) instance IDs, GroundTruth, {class ID: name}) -> {instance ID: class ID}."""


def class_map(instance_labels: np.ndarray, class_of: dict[int, int]) -> np.ndarray:
    """(S, H, W) instance IDs -> (S, H, W) int64 class IDs (0 for no instance or no class)."""
    ids = np.unique(instance_labels)
    lookup = np.array([class_of.get(int(i), 0) for i in ids], dtype=np.int64)
    return lookup[np.searchsorted(ids, instance_labels)]


def oracle_classes(instance_labels: np.ndarray, gt_class_ids: np.ndarray) -> dict[int, int]:
    """{predicted instance ID: the most frequent GT class > 0 under its pixels} (ties: smaller ID)."""
    result = {}
    for instance_id in np.setdiff1d(np.unique(instance_labels), [0]).tolist():
        classes = gt_class_ids[instance_labels == instance_id]
        classes = classes[classes > 0]
        if len(classes):
            result[instance_id] = int(np.bincount(classes).argmax())
    return result


def oracle_labeller(predictions, instance_labels, truth, class_names) -> dict[int, int]:
    """The :data:`Labeller` of the oracle row (module docstring)."""
    return oracle_classes(instance_labels, truth.class_ids)


def semantic_scores(
    pred_classes: np.ndarray,
    pred_points: np.ndarray,
    truth,
    label_set: Sequence[int],
    alignment: str = "sim3",
    voxel_size: float = 0.05,
) -> dict[str, float]:
    """2D and 3D mIoU / mAcc of a (S, H, W) class map against a GroundTruth with class IDs.

    Args:
        pred_classes: (S, H, W) predicted class IDs.
        pred_points: (S, H, W, 3) predicted world points (any frame and scale).
        truth: :class:`iggt.eval.ground_truth.GroundTruth` (class_ids, world_points, valid).
        label_set: evaluated class IDs.
        alignment: point-map alignment, as for the point metrics.
        voxel_size: voxel edge in ground-truth units (metres for the engine's scenes).
    """
    scores = semantic_metrics(pred_classes, truth.class_ids, label_set)
    result = {"miou_2d": scores["miou"], "macc_2d": scores["macc"]}
    valid = truth.valid & np.isfinite(pred_points).all(-1)
    aligned = align_points(pred_points[valid], truth.world_points[valid], alignment).apply(pred_points[valid])
    scores_3d = semantic_metrics_3d(
        aligned, pred_classes[valid], truth.world_points[valid], truth.class_ids[valid], label_set, voxel_size
    )
    result.update({"miou_3d": scores_3d["miou"], "macc_3d": scores_3d["macc"]})
    return result


def ground_truth_predictions(images, truth) -> Predictions:
    """Predictions equal to the ground truth (cameras, depth, points; confidence 1) for (S, 3, H, W) images."""
    num_views, _, height, width = images.shape
    ones = np.ones((num_views, height, width), np.float32)
    return Predictions(
        images=images.permute(0, 2, 3, 1).numpy(),
        extrinsic=truth.extrinsic.astype(np.float32),
        intrinsic=truth.intrinsic.astype(np.float32),
        depth=truth.depth.astype(np.float32),
        depth_conf=ones,
        world_points=truth.world_points.astype(np.float32),
        world_points_conf=ones,
        instance_feat=np.zeros((num_views, height, width, 1), np.float32),
        pose_enc=np.zeros((num_views, 9), np.float32),
    )


def recognition_scores(scene, labeller: Labeller, img_size: int, patch_size: int = 14, voxel_size: float = 0.05):
    """A labeller's scores on a scene's ground-truth masks and geometry: recognition alone.

    The oracle scores 1 here by construction, so the numbers measure only how instances get classes.
    """
    from iggt.eval.ground_truth import prepare_views

    images, truth = prepare_views(scene, np.arange(len(scene.images)), img_size, patch_size)
    predictions = ground_truth_predictions(images, truth)
    classes = class_map(truth.instance_ids, labeller(predictions, truth.instance_ids, truth, scene.class_names))
    return semantic_scores(classes, predictions.world_points, truth, sorted(scene.class_names), "none", voxel_size)
