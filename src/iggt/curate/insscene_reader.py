"""Reading the official InsScene-15K scene layout (the IGGT release) as a Scene.

One scene folder, frame files sharing a stem (e.g. ``frame_000010``)::

    images/<stem>.jpg|.png              RGB
    depth/<stem>.png                    uint16 depth in millimetres (0 = invalid), the images' size
    cam/<stem>.npz                      'intrinsic' (3, 3) and 'extrinsic' (3, 4) or (4, 4)
                                        camera-from-world; or 'pose' (4, 4) camera-to-world
    scene_iphone_metadata.npz           instead of cam/: 'images' (N,) file names, 'intrinsics'
                                        (N, 3, 3), 'trajectories' (N, 4, 4) camera-to-world
    refined_ins_ids/<stem>.npy          optional int16 (H, W) instance IDs, 0 = none, consistent
                                        over the scene (also spelled <stem>.jpg.npy)

``gt_depth/`` and ``gt_cam/`` are read where ``depth/`` and ``cam/`` are absent (the official
release's demo.py falls back to those names). In a ``cam/*.npz`` the key ``pose`` is camera-to-world:
the demo inverts it to get the camera-from-world extrinsic it unprojects depth with (its comment
calls it world-to-camera, but the use is that of a camera-to-world matrix).

Every problem is a SceneFormatError naming the frame and the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from iggt.errors import SceneFormatError
from iggt.structures.scene import InstanceInfo, Scene

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
METADATA_FILE = "scene_iphone_metadata.npz"
INSTANCE_DIR = "refined_ins_ids"


DEPTH_DIRS, CAMERA_DIRS = ("depth", "gt_depth"), ("cam", "gt_cam")


def _first_dir(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / name for name in names if (folder / name).is_dir()), None)


def is_insscene_scene(folder: Path) -> bool:
    """True when ``folder`` has images/, depth/ and cam/ (or gt_depth/, gt_cam/) or the iPhone metadata file."""
    folder = Path(folder)
    has_cameras = _first_dir(folder, CAMERA_DIRS) is not None or (folder / METADATA_FILE).is_file()
    return (folder / "images").is_dir() and _first_dir(folder, DEPTH_DIRS) is not None and has_cameras


def _fail(folder: Path, stem: str, message: str) -> SceneFormatError:
    return SceneFormatError(f"scene {folder}: frame {stem}: {message}")


def _image_stems(folder: Path) -> dict[str, Path]:
    images = {p.stem: p for p in sorted((folder / "images").iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    if not images:
        raise SceneFormatError(f"scene {folder}: no images in images/; expected <frame>.jpg or .png files")
    return images


def _rigid(matrix: np.ndarray, folder: Path, stem: str, where: str) -> np.ndarray:
    """(4, 4) float64 from a (3, 4) or (4, 4) rigid transform, checked."""
    if matrix.shape not in ((3, 4), (4, 4)) or not np.isfinite(matrix).all():
        raise _fail(folder, stem, f"{where} must be a finite (3, 4) or (4, 4) matrix, got {matrix.shape}")
    full = np.eye(4)
    full[:3] = matrix[:3]
    rotation = full[:3, :3]
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-3) or np.linalg.det(rotation) < 0:
        raise _fail(folder, stem, f"{where} rotation is not a rotation matrix")
    return full


def _cameras_from_files(folder: Path, cameras: Path, stems: list[str]) -> tuple[np.ndarray, np.ndarray]:
    intrinsics, extrinsics = [], []
    for stem in stems:
        path = cameras / f"{stem}.npz"
        if not path.is_file():
            raise _fail(folder, stem, f"{cameras.name}/{path.name} missing")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError) as exc:
            raise _fail(folder, stem, f"{cameras.name}/{path.name} is unreadable ({exc})") from exc
        intrinsic = arrays.get("intrinsic", arrays.get("intrinsics"))
        if intrinsic is None or intrinsic.shape != (3, 3):
            raise _fail(folder, stem, f"{cameras.name}/{path.name} needs 'intrinsic' (3, 3); it has {sorted(arrays)}")
        if "extrinsic" in arrays:
            extrinsic = _rigid(arrays["extrinsic"], folder, stem, f"{cameras.name}/{path.name} 'extrinsic'")
        elif "pose" in arrays:
            extrinsic = np.linalg.inv(_rigid(arrays["pose"], folder, stem, f"{cameras.name}/{path.name} 'pose'"))
        else:
            raise _fail(
                folder, stem, f"{cameras.name}/{path.name} needs 'extrinsic' or 'pose'; it has {sorted(arrays)}"
            )
        intrinsics.append(intrinsic)
        extrinsics.append(extrinsic[:3])
    return np.stack(intrinsics), np.stack(extrinsics)


def _cameras_from_metadata(folder: Path, stems: list[str]) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(folder / METADATA_FILE, allow_pickle=False) as data:
            names = [Path(str(n)).stem for n in data["images"]]
            intrinsics, poses = data["intrinsics"], data["trajectories"]
    except (OSError, KeyError, ValueError) as exc:
        raise SceneFormatError(
            f"scene {folder}: {METADATA_FILE} needs 'images', 'intrinsics' and 'trajectories' ({exc})"
        ) from exc
    if len(names) != len(intrinsics) or len(names) != len(poses):
        raise SceneFormatError(f"scene {folder}: {METADATA_FILE} has unequal numbers of images and cameras")
    row = {name: i for i, name in enumerate(names)}
    chosen_k, chosen_e = [], []
    for stem in stems:
        if stem not in row:
            raise _fail(folder, stem, f"images/{stem} has no camera in {METADATA_FILE}")
        chosen_k.append(intrinsics[row[stem]])
        chosen_e.append(np.linalg.inv(_rigid(poses[row[stem]], folder, stem, f"{METADATA_FILE} trajectory"))[:3])
    return np.stack(chosen_k), np.stack(chosen_e)


def _read_array(folder: Path, stem: str, path: Path, what: str) -> np.ndarray:
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        with Image.open(path) as image:
            return np.array(image.convert("RGB") if what == "image" else image)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise _fail(folder, stem, f"{path.parent.name}/{path.name} is unreadable ({exc})") from exc


def _instance_path(folder: Path, stem: str, image: Path) -> Path | None:
    for name in (f"{stem}.npy", f"{image.name}.npy"):
        if (folder / INSTANCE_DIR / name).is_file():
            return folder / INSTANCE_DIR / name
    return None


def read_insscene_scene(folder: str | Path, depth_scale: float = 1000.0) -> Scene:
    """One InsScene-15K scene folder as a Scene (see the module docstring)."""
    folder = Path(folder)
    if not is_insscene_scene(folder):
        raise SceneFormatError(f"{folder} is not an InsScene-15K scene: it needs images/, depth/ and cam/")
    images_by_stem = _image_stems(folder)
    stems = list(images_by_stem)
    cameras, depth_dir = _first_dir(folder, CAMERA_DIRS), _first_dir(folder, DEPTH_DIRS)
    if cameras is not None:
        intrinsic, extrinsic = _cameras_from_files(folder, cameras, stems)
    else:
        intrinsic, extrinsic = _cameras_from_metadata(folder, stems)
    with_instances = (folder / INSTANCE_DIR).is_dir()
    images, depths, instance_maps = [], [], []
    for stem in stems:
        image = _read_array(folder, stem, images_by_stem[stem], "image")
        depth_path = depth_dir / f"{stem}.png"
        if not depth_path.is_file():
            raise _fail(folder, stem, f"{depth_dir.name}/{depth_path.name} missing")
        depth = _read_array(folder, stem, depth_path, "depth")
        if depth.ndim != 2 or depth.shape != image.shape[:2]:
            raise _fail(
                folder,
                stem,
                f"{depth_dir.name}/{depth_path.name} is {depth.shape} but images/{images_by_stem[stem].name} "
                f"is {image.shape[:2]}; resize the depth maps to the images",
            )
        images.append(image)
        depths.append(depth.astype(np.float32) / depth_scale)
        if with_instances:
            path = _instance_path(folder, stem, images_by_stem[stem])
            if path is None:
                raise _fail(folder, stem, f"{INSTANCE_DIR}/{stem}.npy missing")
            ids = _read_array(folder, stem, path, "instance")
            if ids.shape != image.shape[:2]:
                raise _fail(
                    folder, stem, f"{INSTANCE_DIR}/{path.name} is {ids.shape} but the image is {image.shape[:2]}"
                )
            instance_maps.append(np.maximum(ids.astype(np.int32), 0))
    sizes = {image.shape for image in images}
    if len(sizes) > 1:
        raise SceneFormatError(f"scene {folder}: images have different sizes {sorted(sizes)}; give one size")
    ids = np.stack(instance_maps) if with_instances else np.zeros((len(stems),) + images[0].shape[:2], np.int32)
    return Scene(
        images=np.stack(images).astype(np.uint8),
        depth=np.stack(depths),
        intrinsic=intrinsic.astype(np.float32),
        extrinsic=extrinsic.astype(np.float32),
        instance_ids=ids,
        class_ids=None,
        frame_names=stems,
        instances={int(i): InstanceInfo("object", "scan") for i in np.unique(ids) if i > 0},
        metadata={"source": "insscene-15k", "folder": folder.name},
    )
