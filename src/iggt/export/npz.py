"""predictions.npz and instances.npz: the full arrays, from which every later stage can restart.

predictions.npz (:meth:`Predictions.save`, read back with :meth:`Predictions.load`), S views at H x W:
    images (S, H, W, 3) float32 RGB in [0, 1]; extrinsic (S, 3, 4) float32 camera-from-world,
    OpenCV; intrinsic (S, 3, 3) float32 pixels; depth (S, H, W) float32 z-depth;
    depth_conf (S, H, W) float32; world_points (S, H, W, 3) float32 in the first camera's frame;
    world_points_conf (S, H, W) float32; instance_feat (S, H, W, C) float32 unit norm;
    pose_enc (S, 9) float32 [t(3), quaternion xyzw(4), fov_h, fov_w].
instances.npz (:meth:`Instances.save`, read back with :meth:`Instances.load`), K instances:
    labels (S, H, W) int32, 0 = none; ids (K,) int32; pixel_counts (K, S) int64;
    centroids, bbox_min, bbox_max (K, 3) float32 world frame; mean_features (K, C) float32 unit norm.
"""

from __future__ import annotations

from pathlib import Path

from iggt.export.options import ExportOptions
from iggt.export.selection import public_exporter
from iggt.structures import Instances, Predictions

PREDICTIONS_FILENAME = "predictions.npz"
INSTANCES_FILENAME = "instances.npz"


def write_npz(predictions: Predictions, instances: Instances, out_dir: Path, options: ExportOptions) -> list[Path]:
    """Write ``predictions.npz`` and ``instances.npz`` into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions_path, instances_path = out_dir / PREDICTIONS_FILENAME, out_dir / INSTANCES_FILENAME
    predictions.save(predictions_path, options.threads, options.deflate_npz_floats)
    instances.save(instances_path, options.threads, options.deflate_npz_floats)
    return [predictions_path, instances_path]


export_npz = public_exporter(write_npz)
