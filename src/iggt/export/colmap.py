"""A COLMAP sparse model (COLMAP, pycolmap, nerfstudio, gsplat), in the files pycolmap writes.

Layout, the one COLMAP's own tools and gsplat's and nerfstudio's COLMAP loaders expect::

    colmap/images/view_000.png ...      the images the network saw (H x W)
    colmap/sparse/0/cameras.bin, images.bin, points3D.bin (+ rigs, frames; and the same as .txt)

Open it with ``colmap gui --import_path colmap/sparse/0 --image_path colmap/images``, train
gsplat with ``--data_dir <out>/colmap``, nerfstudio with
``ns-train splatfacto --data <out>/colmap colmap --colmap-path sparse/0``.

One PINHOLE camera per view (predicted intrinsics differ per view); each image's
``cam_from_world`` is the predicted extrinsic; points3D are a confident subset of the predicted
points, each observed once, at the pixel it came from.

Pixel convention: in COLMAP the centre of the top-left pixel is (0.5, 0.5); in iggt it is
(0, 0). Principal points and 2D observations go out through :mod:`iggt.geometry.conventions`,
so that COLMAP projects each 3D point onto the centre of the pixel it came from. The files are
written without pycolmap (:mod:`iggt.export.colmap_files`), byte for byte what it writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from iggt.export.colmap_files import SparseModel, write_sparse_model
from iggt.export.naming import view_names
from iggt.export.options import ExportOptions
from iggt.export.selection import public_exporter, select_points, to_uint8
from iggt.export.view_files import map_views, save_rgb_png
from iggt.geometry import colmap_pinhole_params, pixels_to_colmap
from iggt.structures import Instances, Predictions


def write_colmap(predictions: Predictions, instances: Instances, out_dir: Path, options: ExportOptions) -> list[Path]:
    """Write ``colmap/images`` and ``colmap/sparse/0`` (binary and text) into ``out_dir``; returns files."""
    root = out_dir / "colmap"
    images_dir, sparse_dir = root / "images", root / "sparse" / "0"
    images_dir.mkdir(parents=True, exist_ok=True)
    sparse_dir.mkdir(parents=True, exist_ok=True)
    names = view_names(predictions.num_views, "view")

    def write_image(view: int) -> None:
        save_rgb_png(to_uint8(np.asarray(predictions.images[view])), images_dir / names[view])

    map_views(write_image, len(names), options.threads)
    write_sparse_model(sparse_model(predictions, instances, names, options), sparse_dir)
    return sorted(images_dir.iterdir()) + sorted(sparse_dir.iterdir())


export_colmap = public_exporter(write_colmap)


def sparse_model(
    predictions: Predictions, instances: Instances, names: list[str], options: ExportOptions
) -> SparseModel:
    """The COLMAP model: a camera and an image per view (IDs view + 1), then the points3D by view."""
    selection = select_points(predictions, instances, options, options.max_colmap_points)
    height, width = predictions.image_size
    extrinsic = predictions.extrinsic.astype(np.float64)
    return SparseModel(
        width=width,
        height=height,
        names=names,
        params=np.array([colmap_pinhole_params(intrinsic) for intrinsic in predictions.intrinsic], np.float64),
        quaternion=np.stack([matrix_to_quaternion(rotation) for rotation in extrinsic[:, :, :3]]),
        translation=extrinsic[:, :, 3],
        keypoint_view=selection.view,  # ascending: the selection is in flat (view, row, column) order
        keypoints=pixels_to_colmap(np.stack([selection.column, selection.row], 1)),
        xyz=selection.xyz.astype(np.float64),
        rgb=selection.rgb,
    )


def matrix_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """(3, 3) float64 rotation -> (4,) quaternion (w, x, y, z), computed as COLMAP does (Eigen's
    ``Quaterniond`` from a matrix, then normalised), operation for operation, so the written
    poses are the bits pycolmap writes."""
    m = rotation.tolist()
    trace = m[0][0] + m[1][1] + m[2][2]
    q = [0.0, 0.0, 0.0, 0.0]  # x, y, z, w as Eigen stores them
    if trace > 0:
        t = np.sqrt(trace + 1.0)
        q[3] = 0.5 * t
        t = 0.5 / t
        q[0] = (m[2][1] - m[1][2]) * t
        q[1] = (m[0][2] - m[2][0]) * t
        q[2] = (m[1][0] - m[0][1]) * t
    else:
        i = 1 if m[1][1] > m[0][0] else 0
        i = 2 if m[2][2] > m[i][i] else i
        j, k = (i + 1) % 3, (i + 2) % 3
        t = np.sqrt(m[i][i] - m[j][j] - m[k][k] + 1.0)
        q[i] = 0.5 * t
        t = 0.5 / t
        q[3] = (m[k][j] - m[j][k]) * t
        q[j] = (m[j][i] + m[i][j]) * t
        q[k] = (m[k][i] + m[i][k]) * t
    x, y, z, w = (float(value) for value in q)
    norm = float(np.sqrt((x * x + z * z) + (y * y + w * w)))  # Eigen's vectorised squaredNorm adds in this order
    return np.array([w, x, y, z]) / norm
