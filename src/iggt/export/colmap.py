"""A COLMAP sparse model (COLMAP, pycolmap, nerfstudio, gsplat) written with pycolmap.

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
so that COLMAP projects each 3D point onto the centre of the pixel it came from.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from iggt.export.naming import view_names
from iggt.export.options import ExportOptions
from iggt.export.selection import public_exporter, select_points, to_uint8
from iggt.geometry import colmap_pinhole_params, pixels_to_colmap
from iggt.structures import Instances, Predictions

if TYPE_CHECKING:
    import pycolmap


def import_pycolmap():
    """pycolmap, imported on first use with this process's SIGTERM handling kept.

    Its native logging library installs a SIGTERM handler at import that prints a native stack
    dump; the handler in place before the import (the CLI's clean exit, or the default) is put back.
    """
    in_main_thread = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM) if in_main_thread else None
    import pycolmap

    if handler is not None:
        signal.signal(signal.SIGTERM, handler)
    return pycolmap


def write_colmap(predictions: Predictions, instances: Instances, out_dir: Path, options: ExportOptions) -> list[Path]:
    """Write ``colmap/images`` and ``colmap/sparse/0`` (binary and text) into ``out_dir``; returns files."""
    root = out_dir / "colmap"
    images_dir, sparse_dir = root / "images", root / "sparse" / "0"
    images_dir.mkdir(parents=True, exist_ok=True)
    sparse_dir.mkdir(parents=True, exist_ok=True)
    names = view_names(predictions.num_views, "view")
    for image, name in zip(predictions.images, names, strict=True):
        Image.fromarray(to_uint8(image)).save(images_dir / name)
    reconstruction = build_reconstruction(predictions, instances, names, options)
    reconstruction.write(sparse_dir)
    reconstruction.write_text(sparse_dir)
    return sorted(images_dir.iterdir()) + sorted(sparse_dir.iterdir())


export_colmap = public_exporter(write_colmap)


def build_reconstruction(
    predictions: Predictions, instances: Instances, names: list[str], options: ExportOptions
) -> pycolmap.Reconstruction:
    """The in-memory COLMAP model: cameras and images with IDs view + 1, then the points3D."""
    pycolmap = import_pycolmap()
    selection = select_points(predictions, instances, options, options.max_colmap_points)
    height, width = predictions.image_size
    observed = [np.flatnonzero(selection.view == view) for view in range(predictions.num_views)]
    reconstruction = pycolmap.Reconstruction()
    for view, name in enumerate(names):
        reconstruction.add_camera_with_trivial_rig(_camera(predictions.intrinsic[view], view + 1, width, height))
        keypoints = np.stack([selection.column[observed[view]], selection.row[observed[view]]], 1)
        image = pycolmap.Image(
            name=name,
            keypoints=pixels_to_colmap(keypoints),
            camera_id=view + 1,
            image_id=view + 1,
        )
        pose = pycolmap.Rigid3d(predictions.extrinsic[view].astype(np.float64))
        reconstruction.add_image_with_trivial_frame(image, pose)
    for view, members in enumerate(observed):
        for keypoint, point in enumerate(members):
            track = pycolmap.Track([pycolmap.TrackElement(view + 1, keypoint)])
            reconstruction.add_point3D(selection.xyz[point].astype(np.float64), track, selection.rgb[point])
    return reconstruction


def _camera(intrinsic: np.ndarray, camera_id: int, width: int, height: int) -> pycolmap.Camera:
    """PINHOLE camera (fx, fy, cx, cy) in COLMAP's pixel convention."""
    pycolmap = import_pycolmap()
    params = colmap_pinhole_params(intrinsic)
    return pycolmap.Camera(camera_id=camera_id, model="PINHOLE", width=width, height=height, params=params)
