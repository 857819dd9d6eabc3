"""Evaluation: metrics as pure float64 functions, and the benchmark runner behind `iggt eval`.

Metrics (import from here): depth (:func:`depth_metrics`), point clouds (:func:`point_map_metrics`),
cameras (:func:`camera_metrics`), multi-view instances (:func:`instance_metrics`), open-vocabulary
semantics (:func:`semantic_metrics`, :func:`semantic_metrics_3d`), and alignment (:func:`umeyama`).
The runner lives in :mod:`iggt.eval.benchmark`; docs/evaluation.md states every protocol.
"""

from iggt.eval.alignment import Similarity, align_points, fit_scale, umeyama
from iggt.eval.cameras import camera_metrics, pose_auc, relative_pose_errors
from iggt.eval.depth import align_depth, depth_metrics
from iggt.eval.instances import instance_metrics, match_instances
from iggt.eval.open_vocab import semantic_metrics, semantic_metrics_3d
from iggt.eval.points import point_cloud_metrics, point_map_metrics, point_map_normals

__all__ = [
    "Similarity",
    "align_depth",
    "align_points",
    "camera_metrics",
    "depth_metrics",
    "fit_scale",
    "instance_metrics",
    "match_instances",
    "point_cloud_metrics",
    "point_map_metrics",
    "point_map_normals",
    "pose_auc",
    "relative_pose_errors",
    "semantic_metrics",
    "semantic_metrics_3d",
    "umeyama",
]
