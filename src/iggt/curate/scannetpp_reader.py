"""Reading a ScanNet++ scene folder (the official release layout) as a Scene, and its labelled mesh.

One scene folder (as the ScanNet++ toolkit lays it out; iPhone frames decoded from ``rgb.mkv`` and
``depth.bin`` by its ``iphone/prepare_iphone_data.py``)::

    scans/mesh_aligned_0.05.ply            mesh, vertices in the scan's aligned world frame (metres)
    scans/segments.json                    {"segIndices": [over-segment of every vertex]}
    scans/segments_anno.json               {"segGroups": [{"objectId", "label", "segments"}, ...]}
    iphone/rgb/frame_NNNNNN.jpg            colour (1920 x 1440)
    iphone/depth/frame_NNNNNN.png          uint16 depth in millimetres, 0 = invalid (256 x 192)
    iphone/pose_intrinsic_imu.json         {"frame_NNNNNN": {"aligned_pose": (4, 4) camera-to-world
                                           in the aligned world, OpenCV axes; "intrinsic": (3, 3)
                                           of the colour images}, ...}
    dslr/resized_images/<name>.JPG         colour, fisheye (``camera_model`` OPENCV_FISHEYE)
    dslr/nerfstudio/transforms.json        "fl_x", "fl_y", "cx", "cy", "w", "h", "camera_model",
                                           "k1".."k4", "frames" (and "test_frames"): [{"file_path",
                                           "transform_matrix": (4, 4) camera-to-world, OpenGL axes}]
                                           (a frame's own "fl_x" ... override the file's, as in
                                           nerfstudio)
    dslr/resized_undistorted_images/       pinhole versions written by the toolkit's
    dslr/nerfstudio/transforms_undistorted.json   ``dslr/undistort.py`` (preferred when present)

Conversion to the project's conventions happens here, at the edge: extrinsics become OpenCV
camera-from-world (OpenGL camera axes x right, y up, z backward are flipped to x right, y down,
z forward; then the camera-to-world matrix is inverted); a nerfstudio ``applied_transform`` is
undone so the cameras sit in the mesh's world; intrinsics, given with COLMAP's origin at the
top-left pixel's corner, move to pixel centres at integers and are scaled to the output size.

iPhone frames are brought to the depth maps' resolution (the colour bilinearly), DSLR frames keep
the images' resolution and have no depth (zeros: path B then cannot check the mesh against a
sensor). Every problem is a SceneFormatError naming the file (and the frame).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from iggt.errors import SceneFormatError
from iggt.eval.ground_truth import select_views
from iggt.eval.scannet_reader import scale_intrinsic
from iggt.structures.scene import Scene

DEVICES = ("iphone", "dslr")
MESH_FILE, SEGMENTS_FILE, ANNOTATION_FILE = "mesh_aligned_0.05.ply", "segments.json", "segments_anno.json"
POSES_FILE = "pose_intrinsic_imu.json"
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])
"""Right-multiplying a camera-to-world matrix by this turns OpenGL camera axes into OpenCV's."""
CORNER_TO_CENTRE = np.array([[1.0, 0, -0.5], [0, 1.0, -0.5], [0, 0, 1.0]])
"""Moves a principal point from COLMAP's pixel-corner origin to pixel centres at integers."""


def is_scannetpp_scene(folder: Path) -> bool:
    """True when ``folder`` has scans/ and an iphone/ or dslr/ capture."""
    folder = Path(folder)
    return (folder / "scans").is_dir() and any((folder / device).is_dir() for device in DEVICES)


def scannetpp_mesh_files(folder: str | Path) -> tuple[Path, Path, Path]:
    """(mesh PLY, segments, annotations) of a ScanNet++ scene; SceneFormatError naming a missing one."""
    scans = Path(folder) / "scans"
    paths = (scans / MESH_FILE, scans / SEGMENTS_FILE, scans / ANNOTATION_FILE)
    for path in paths:
        if not path.is_file():
            raise SceneFormatError(
                f"ScanNet++ scene {folder}: scans/{path.name} missing; download the scene's mesh and annotation files"
            )
    return paths


def _fail(path: Path, frame: str | None, problem: str) -> SceneFormatError:
    where = f"frame {frame}: " if frame is not None else ""
    return SceneFormatError(f"{where}{path.parent.name}/{path.name} {problem}")


def _load_json(path: Path):
    if not path.is_file():
        raise _fail(path, None, "missing")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, None, f"is not readable JSON ({exc})") from exc


def _matrix(value, shape: tuple[int, int], path: Path, frame: str | None, key: str) -> np.ndarray:
    try:
        matrix = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise _fail(path, frame, f"'{key}' is not a matrix ({exc})") from exc
    if matrix.size == shape[0] * shape[1]:
        matrix = matrix.reshape(shape)
    if matrix.shape != shape or not np.isfinite(matrix).all():
        raise _fail(path, frame, f"'{key}' must be a finite {shape[0]} x {shape[1]} matrix, got shape {matrix.shape}")
    return matrix


def _image(path: Path, frame: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W, 3) uint8, resized bilinearly to ``size`` (H, W) when given."""
    if not path.is_file():
        raise _fail(path, frame, "missing")
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    except (OSError, UnidentifiedImageError) as exc:
        raise _fail(path, frame, f"is unreadable ({exc})") from exc
    if size is not None and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def _camera_from_world(camera_to_world: np.ndarray) -> np.ndarray:
    """(3, 4) camera-from-world of a (4, 4) OpenCV camera-to-world matrix."""
    return np.linalg.inv(camera_to_world)[:3]


def _stem_order(stems: list[str]) -> list[str]:
    """Frame stems in capture order: by their trailing number (frame_000010 after frame_000009)."""
    digits = ["".join(c for c in stem if c.isdigit()) for stem in stems]
    if all(digits):
        return [stem for _, stem in sorted(zip((int(d) for d in digits), stems, strict=True))]
    return sorted(stems)


def _read_iphone(folder: Path, depth_scale: float, max_frames: int | None) -> Scene:
    rgb_dir, depth_dir, poses_path = (
        folder / "iphone" / "rgb",
        folder / "iphone" / "depth",
        folder / "iphone" / POSES_FILE,
    )
    if not rgb_dir.is_dir() or not depth_dir.is_dir():
        raise SceneFormatError(
            f"ScanNet++ scene {folder}: iphone/rgb/ and iphone/depth/ are needed; decode rgb.mkv and depth.bin "
            "with the ScanNet++ toolkit's iphone/prepare_iphone_data.py"
        )
    colour = {p.stem: p for p in rgb_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")}
    if not colour:
        raise SceneFormatError(f"ScanNet++ scene {folder}: no images in iphone/rgb/")
    stems = _stem_order(list(colour))
    stems = [stems[i] for i in select_views(len(stems), max_frames)]
    poses = _load_json(poses_path)
    if not isinstance(poses, dict):
        raise _fail(poses_path, None, "must map frame names to {'aligned_pose', 'intrinsic'}")
    images, depths, intrinsics, extrinsics = [], [], [], []
    for stem in stems:
        entry = poses.get(stem)
        if not isinstance(entry, dict) or "aligned_pose" not in entry or "intrinsic" not in entry:
            raise _fail(poses_path, stem, "has no 'aligned_pose' and 'intrinsic' for it; give every rgb/ frame one")
        depth_path = depth_dir / f"{stem}.png"
        if not depth_path.is_file():
            raise _fail(depth_path, stem, "missing")
        try:
            with Image.open(depth_path) as opened:
                depth = np.asarray(opened)
        except (OSError, UnidentifiedImageError) as exc:
            raise _fail(depth_path, stem, f"is unreadable ({exc})") from exc
        with Image.open(colour[stem]) as opened:
            colour_size = (opened.height, opened.width)
        if depth.ndim != 2 or abs(depth.shape[1] / depth.shape[0] - colour_size[1] / colour_size[0]) > 0.01:
            raise _fail(
                depth_path,
                stem,
                f"is {depth.shape} but rgb/{colour[stem].name} is {colour_size}: not the same aspect ratio",
            )
        if depths and depth.shape != depths[0].shape:
            raise _fail(depth_path, stem, f"is {depth.shape} but the first depth map is {depths[0].shape}")
        intrinsic = CORNER_TO_CENTRE @ _matrix(entry["intrinsic"], (3, 3), poses_path, stem, "intrinsic")
        intrinsics.append(scale_intrinsic(intrinsic, colour_size, depth.shape))
        extrinsics.append(_camera_from_world(_matrix(entry["aligned_pose"], (4, 4), poses_path, stem, "aligned_pose")))
        images.append(_image(colour[stem], stem, depth.shape))
        depths.append(depth.astype(np.float32) / depth_scale)
    return _scene(folder, "iphone", stems, np.stack(images), np.stack(depths), intrinsics, extrinsics)


def _dslr_files(folder: Path) -> tuple[Path, Path]:
    """The (transforms, image folder) pair to read: the toolkit's undistorted pinhole ones if present."""
    dslr = folder / "dslr"
    undistorted = dslr / "nerfstudio" / "transforms_undistorted.json"
    if undistorted.is_file() and (dslr / "resized_undistorted_images").is_dir():
        return undistorted, dslr / "resized_undistorted_images"
    return dslr / "nerfstudio" / "transforms.json", dslr / "resized_images"


def _dslr_intrinsic(camera: dict, path: Path, stem: str, image_size: tuple[int, int]):
    """(3, 3) intrinsics and the (H, W) they belong to, from nerfstudio keys (a frame's own keys,
    merged into ``camera``, override the file's)."""
    try:
        intrinsic = np.array(
            [[camera["fl_x"], 0, camera["cx"]], [0, camera["fl_y"], camera["cy"]], [0, 0, 1]], dtype=np.float64
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(path, stem, f"needs numbers 'fl_x', 'fl_y', 'cx' and 'cy' ({exc!r})") from exc
    return intrinsic, (int(camera.get("h", image_size[0])), int(camera.get("w", image_size[1])))


def _read_dslr(folder: Path, max_frames: int | None) -> Scene:
    transforms_path, image_dir = _dslr_files(folder)
    transforms = _load_json(transforms_path)
    if not isinstance(transforms, dict) or not isinstance(transforms.get("frames"), list):
        raise _fail(transforms_path, None, "must hold nerfstudio transforms with a 'frames' list")
    distortion = [float(transforms.get(k, 0.0) or 0.0) for k in ("k1", "k2", "k3", "k4", "p1", "p2")]
    if any(distortion) and transforms.get("camera_model", "PINHOLE") != "PINHOLE":
        raise _fail(
            transforms_path,
            None,
            f"describes a distorted {transforms.get('camera_model')} camera; run the ScanNet++ toolkit's "
            "dslr/undistort.py to write nerfstudio/transforms_undistorted.json and resized_undistorted_images/",
        )
    world_fix = np.eye(4)
    if "applied_transform" in transforms:  # nerfstudio's world = applied_transform @ the capture's world
        applied = np.asarray(transforms["applied_transform"], dtype=object)
        shape = (4, 4) if applied.size == 16 else (3, 4)
        world_fix[:3] = _matrix(transforms["applied_transform"], shape, transforms_path, None, "applied_transform")[:3]
    # test frames whose images the release withholds are left out; train frames must all be there
    frames = transforms["frames"] + [
        f for f in transforms.get("test_frames", []) if (image_dir / str(f.get("file_path", ""))).is_file()
    ]
    if not frames:
        raise _fail(transforms_path, None, "lists no frames")
    names = [str(frame.get("file_path", "")) for frame in frames]
    stems = [Path(name).stem for name in names]
    chosen = select_views(len(frames), max_frames)
    images, intrinsics, extrinsics = [], [], []
    for i in chosen:
        frame, stem = frames[i], stems[i]
        if "transform_matrix" not in frame:
            raise _fail(transforms_path, stem, "has no 'transform_matrix' for it")
        camera_to_world = _matrix(frame["transform_matrix"], (4, 4), transforms_path, stem, "transform_matrix")
        image = _image(image_dir / names[i], stem)
        if images and image.shape != images[0].shape:
            raise _fail(
                image_dir / names[i], stem, f"is {image.shape[:2]} but the first image is {images[0].shape[:2]}"
            )
        intrinsic, size = _dslr_intrinsic({**transforms, **frame}, transforms_path, stem, image.shape[:2])
        intrinsics.append(scale_intrinsic(CORNER_TO_CENTRE @ intrinsic, size, image.shape[:2]))
        extrinsics.append(_camera_from_world(np.linalg.inv(world_fix) @ camera_to_world @ OPENGL_TO_OPENCV))
        images.append(image)
    stems = [stems[i] for i in chosen]
    depth = np.zeros((len(stems),) + images[0].shape[:2], dtype=np.float32)
    return _scene(folder, "dslr", stems, np.stack(images), depth, intrinsics, extrinsics)


def _scene(folder, device, stems, images, depth, intrinsics, extrinsics) -> Scene:
    if len(set(stems)) != len(stems):
        raise SceneFormatError(f"ScanNet++ scene {folder}: {device} frame names are not unique")
    return Scene(
        images=images,
        depth=depth,
        intrinsic=np.stack(intrinsics).astype(np.float32),
        extrinsic=np.stack(extrinsics).astype(np.float32),
        instance_ids=np.zeros(depth.shape, dtype=np.int32),
        class_ids=None,
        frame_names=stems,
        instances={},
        metadata={"source": f"scannetpp-{device}", "folder": Path(folder).name},
    )


def read_scannetpp_scene(
    folder: str | Path, device: str | None = None, depth_scale: float = 1000.0, max_frames: int | None = None
) -> Scene:
    """One ScanNet++ capture as a Scene without instance IDs (see the module docstring).

    Args:
        folder: the scene folder (holding scans/, iphone/, dslr/).
        device: "iphone" or "dslr"; None: the iPhone when its frames are decoded, else the DSLR.
        depth_scale: depth PNG units per metre (iPhone).
        max_frames: read at most this many frames, spread evenly (None: all; the iPhone has thousands).
    """
    folder = Path(folder)
    if not is_scannetpp_scene(folder):
        raise SceneFormatError(f"{folder} is not a ScanNet++ scene: it needs scans/ and iphone/ or dslr/")
    if device is None:
        device = "iphone" if (folder / "iphone" / "rgb").is_dir() else "dslr"
    if device == "iphone":
        return _read_iphone(folder, depth_scale, max_frames)
    if device == "dslr":
        return _read_dslr(folder, max_frames)
    raise SceneFormatError(f"unknown ScanNet++ device {device!r}; choose one of {', '.join(DEVICES)}")
