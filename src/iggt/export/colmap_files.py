"""COLMAP's sparse-model files (cameras, images, points3D, rigs, frames; binary and text) from arrays.

The bytes are those COLMAP 3.12 / pycolmap 4 write for the same model (``Reconstruction.write`` and
``write_text``), written here with numpy instead of building a ``pycolmap.Reconstruction`` point by
point, which took 1.6 s of the example scene's 3 s export (tests/export read every file back
through pycolmap). The model is the one iggt exports: one PINHOLE camera, one trivial rig and one
frame per image, and points3D each observed once; text numbers are printed as COLMAP prints them,
17 significant digits (``%.17g``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

PINHOLE_MODEL_ID = 1
CAMERA_SENSOR_TYPE = 0
"""COLMAP's ``SensorType::CAMERA``; in text it is spelled CAMERA."""
UNKNOWN_ERROR = -1.0
"""The reprojection error of a point3D nobody measured (COLMAP writes -1)."""

CAMERAS_HEADER = "# Camera list with one line of data per camera:\n#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n"
IMAGES_HEADER = (
    "# Image list with two lines of data per image:\n"
    "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n"
    "#   POINTS2D[] as (X, Y, POINT3D_ID)\n"
)
POINTS_HEADER = (
    "# 3D point list with one line of data per point:\n"
    "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n"
)
RIGS_HEADER = (
    "# Rig calib list with one line of data per calib:\n"
    "#   RIG_ID, NUM_SENSORS, REF_SENSOR_TYPE, REF_SENSOR_ID, SENSORS[] as (SENSOR_TYPE, SENSOR_ID, HAS_POSE, "
    "[QW, QX, QY, QZ, TX, TY, TZ])\n"
)
FRAMES_HEADER = (
    "# Frame list with one line of data per frame:\n"
    "#   FRAME_ID, RIG_ID, RIG_FROM_WORLD[QW, QX, QY, QZ, TX, TY, TZ], NUM_DATA_IDS, DATA_IDS[] as "
    "(SENSOR_TYPE, SENSOR_ID, DATA_ID)\n"
)


@dataclass
class SparseModel:
    """S images of one size, each with its own camera, rig and frame (ID = view + 1), and M points3D.

    Attributes:
        width, height: image size in pixels.
        names: S image file names.
        params: (S, 4) float64 PINHOLE fx, fy, cx, cy in COLMAP's pixel convention.
        quaternion: (S, 4) float64 cam_from_world rotation (w, x, y, z).
        translation: (S, 3) float64 cam_from_world translation.
        keypoint_view: (M,) int64 the view observing each point3D, ascending.
        keypoints: (M, 2) float64 each point3D's observation (x, y) in COLMAP's pixel convention;
            point3D m (ID m + 1) is keypoint m - (first point of its view) of its view.
        xyz: (M, 3) float64 world points.
        rgb: (M, 3) uint8 colours.
    """

    width: int
    height: int
    names: list[str]
    params: np.ndarray
    quaternion: np.ndarray
    translation: np.ndarray
    keypoint_view: np.ndarray
    keypoints: np.ndarray
    xyz: np.ndarray
    rgb: np.ndarray

    @property
    def num_images(self) -> int:
        return len(self.names)

    def view_starts(self) -> np.ndarray:
        """(S + 1,) index of each view's first point3D, then M."""
        return np.searchsorted(self.keypoint_view, np.arange(self.num_images + 1))


def write_sparse_model(model: SparseModel, folder: Path) -> list[Path]:
    """Write the binary and the text files of ``model`` into ``folder``; returns them."""
    writers = {
        "cameras": (_cameras_bin, _cameras_txt),
        "images": (_images_bin, _images_txt),
        "points3D": (_points_bin, _points_txt),
        "rigs": (_rigs_bin, _rigs_txt),
        "frames": (_frames_bin, _frames_txt),
    }
    written = []
    for name, (binary, text) in writers.items():
        (folder / f"{name}.bin").write_bytes(binary(model))
        (folder / f"{name}.txt").write_text(text(model), encoding="utf-8", newline="\n")
        written += [folder / f"{name}.bin", folder / f"{name}.txt"]
    return written


def _count(number: int) -> bytes:
    return np.uint64(number).tobytes()


def _ids(model: SparseModel) -> np.ndarray:
    return np.arange(1, model.num_images + 1)


def _cameras_bin(model: SparseModel) -> bytes:
    layout = np.dtype([("id", "<u4"), ("model", "<i4"), ("width", "<u8"), ("height", "<u8"), ("params", "<f8", 4)])
    records = np.zeros(model.num_images, layout)
    records["id"], records["model"] = _ids(model), PINHOLE_MODEL_ID
    records["width"], records["height"], records["params"] = model.width, model.height, model.params
    return _count(model.num_images) + records.tobytes()


def _cameras_txt(model: SparseModel) -> str:
    size = f"{model.width} {model.height}"
    lines = [f"{i} PINHOLE {size} {_numbers(p)}\n" for i, p in zip(_ids(model), model.params, strict=True)]
    return f"{CAMERAS_HEADER}# Number of cameras: {model.num_images}\n" + "".join(lines)


def _images_bin(model: SparseModel) -> bytes:
    head = np.dtype([("id", "<u4"), ("pose", "<f8", 7), ("camera", "<u4")])
    observation = np.dtype([("xy", "<f8", 2), ("point", "<u8")])
    starts = model.view_starts()
    parts = [_count(model.num_images)]
    for view, name in enumerate(model.names):
        record = np.zeros(1, head)
        record["id"] = record["camera"] = view + 1
        record["pose"] = np.concatenate([model.quaternion[view], model.translation[view]])
        points = np.zeros(starts[view + 1] - starts[view], observation)
        points["xy"] = model.keypoints[starts[view] : starts[view + 1]]
        points["point"] = np.arange(starts[view], starts[view + 1]) + 1
        parts += [record.tobytes(), name.encode() + b"\0", _count(len(points)), points.tobytes()]
    return b"".join(parts)


def _images_txt(model: SparseModel) -> str:
    starts = model.view_starts()
    mean = len(model.xyz) / model.num_images if model.num_images else 0
    lines = [f"{IMAGES_HEADER}# Number of images: {model.num_images}, mean observations per image: {mean:.17g}\n"]
    for view, name in enumerate(model.names):
        pose = _numbers(np.concatenate([model.quaternion[view], model.translation[view]]))
        lines.append(f"{view + 1} {pose} {view + 1} {name}\n")
        count = starts[view + 1] - starts[view]
        xy = model.keypoints[starts[view] : starts[view + 1]]
        ids = np.arange(starts[view], starts[view + 1]) + 1
        lines.append(("%.17g %.17g %d " * count) % tuple(_interleave(xy[:, 0], xy[:, 1], ids)) + "\n")
    return "".join(lines)


def _points_bin(model: SparseModel) -> bytes:
    layout = np.dtype(
        [("id", "<u8"), ("xyz", "<f8", 3), ("rgb", "u1", 3), ("error", "<f8"), ("track_length", "<u8"),
         ("image", "<u4"), ("point2D", "<u4")]
    )  # fmt: skip
    records = np.zeros(len(model.xyz), layout)
    records["id"] = np.arange(1, len(model.xyz) + 1)
    records["xyz"], records["rgb"], records["error"], records["track_length"] = model.xyz, model.rgb, UNKNOWN_ERROR, 1
    records["image"] = model.keypoint_view + 1
    records["point2D"] = np.arange(len(model.xyz)) - model.view_starts()[model.keypoint_view]
    return _count(len(model.xyz)) + records.tobytes()


def _points_txt(model: SparseModel) -> str:
    count = len(model.xyz)
    track_length = 1 if count else 0
    header = f"{POINTS_HEADER}# Number of points: {count}, mean track length: {track_length}\n"
    point2d = np.arange(count) - model.view_starts()[model.keypoint_view]
    columns = (np.arange(1, count + 1), *model.xyz.T, *model.rgb.T.astype(np.int64), model.keypoint_view + 1, point2d)
    return header + ("%d %.17g %.17g %.17g %d %d %d -1 %d %d\n" * count) % tuple(_interleave(*columns))


def _rigs_bin(model: SparseModel) -> bytes:
    layout = np.dtype([("id", "<u4"), ("num_sensors", "<u4"), ("sensor_type", "<i4"), ("sensor", "<u4")])
    records = np.zeros(model.num_images, layout)
    records["id"] = records["sensor"] = _ids(model)
    records["num_sensors"], records["sensor_type"] = 1, CAMERA_SENSOR_TYPE
    return _count(model.num_images) + records.tobytes()


def _rigs_txt(model: SparseModel) -> str:
    lines = [f"{i} 1 CAMERA {i}\n" for i in _ids(model)]
    return f"{RIGS_HEADER}# Number of rigs: {model.num_images}\n" + "".join(lines)


def _frames_bin(model: SparseModel) -> bytes:
    layout = np.dtype(
        [("id", "<u4"), ("rig", "<u4"), ("pose", "<f8", 7), ("num_data", "<u4"), ("sensor_type", "<i4"),
         ("sensor", "<u4"), ("data", "<u8")]
    )  # fmt: skip
    records = np.zeros(model.num_images, layout)
    records["id"] = records["rig"] = records["sensor"] = records["data"] = _ids(model)
    records["pose"] = np.concatenate([model.quaternion, model.translation], 1)
    records["num_data"], records["sensor_type"] = 1, CAMERA_SENSOR_TYPE
    return _count(model.num_images) + records.tobytes()


def _frames_txt(model: SparseModel) -> str:
    poses = np.concatenate([model.quaternion, model.translation], 1)
    lines = [f"{i} {i} {_numbers(pose)} 1 CAMERA {i} {i}\n" for i, pose in zip(_ids(model), poses, strict=True)]
    return f"{FRAMES_HEADER}# Number of frames: {model.num_images}\n" + "".join(lines)


def _numbers(values: np.ndarray) -> str:
    return " ".join(f"{value:.17g}" for value in values.tolist())


def _interleave(*columns: np.ndarray) -> list:
    """Row-major values of the given columns as Python numbers (ints stay ints), for %-formatting."""
    rows = np.empty((len(columns[0]), len(columns)), dtype=object)
    for index, column in enumerate(columns):
        rows[:, index] = column.tolist()
    return rows.ravel().tolist()
