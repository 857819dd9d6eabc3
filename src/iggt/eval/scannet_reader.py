"""Reading ScanNet / ScanNet++ style scene folders (the benchmark release layout) as a Scene.

Layout of one scene folder (frame files share a stem, e.g. ``0.jpg``, ``0.png``, ``0.txt``)::

    color/<stem>.jpg|.png                 RGB images
    depth/<stem>.png                      uint16 depth in millimetres (0 = invalid); optional
    pose/<stem>.txt                       4 x 4 camera-to-world matrix, OpenCV axes
    intrinsic/intrinsic_color.txt         4 x 4 (or 3 x 3) intrinsics of the colour images
    intrinsic/intrinsic_depth.txt         intrinsics of the depth maps; optional
    instance/ or instance-filt/<stem>.png|.npy   instance IDs, 0 = unlabelled; optional
    label/ or label-filt/<stem>.png|.npy         semantic class IDs, 0 = unlabelled; optional

Frames are sorted by stem (numerically when all stems are integers); frames whose pose is not
finite (ScanNet marks lost tracking with -inf) are skipped. Every frame is brought to the depth
maps' resolution when there are depth maps (ScanNet's colour is larger than its depth), else kept
at the colour resolution: images bilinearly, ID maps by nearest neighbour. The intrinsics are
``intrinsic_depth.txt`` when it exists and the depth defines the resolution (the depth camera's,
which the depth map belongs to), else ``intrinsic_color.txt`` scaled to the resolution with the
pixel-centre convention. Depth is divided by ``depth_scale`` (1000: millimetres to metres).

The label maps carry no names; given a :class:`iggt.eval.scannet_labels.ClassTable` (ScanNet's
``scannetv2-labels.combined.tsv`` or a class-name file), their IDs become its classes and the
scene gets its class names (every class of the table), which the open-vocabulary rows need.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from iggt.errors import SceneFormatError
from iggt.eval.ground_truth import select_views
from iggt.eval.scannet_labels import ClassTable
from iggt.structures.scene import InstanceInfo, Scene

COLOR_SUFFIXES = (".jpg", ".jpeg", ".png")
INSTANCE_DIRS = ("instance", "instance-filt")
LABEL_DIRS = ("label", "label-filt")


def is_scannet_scene(folder: Path) -> bool:
    """True when ``folder`` has ``color/`` and ``pose/`` subfolders."""
    return (Path(folder) / "color").is_dir() and (Path(folder) / "pose").is_dir()


def list_scannet_scenes(root: Path) -> list[Path]:
    """``root`` itself if it is a scene folder, else its scene subfolders sorted by name."""
    root = Path(root)
    if is_scannet_scene(root):
        return [root]
    return sorted(child for child in root.iterdir() if child.is_dir() and is_scannet_scene(child))


def _frame_stems(folder: Path) -> list[str]:
    stems = [path.stem for path in (folder / "color").iterdir() if path.suffix.lower() in COLOR_SUFFIXES]
    if not stems:
        raise SceneFormatError(f"no images in {folder / 'color'}; expected <frame>.jpg or .png files")
    numeric = all(stem.isdigit() for stem in stems)
    return sorted(stems, key=int) if numeric else sorted(stems)


def _find_file(folder: Path, stem: str, suffixes: tuple[str, ...]) -> Path | None:
    for suffix in suffixes:
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def read_matrix(path: Path) -> np.ndarray:
    """A whitespace-separated text matrix as float64."""
    try:
        return np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as exc:
        raise SceneFormatError(f"cannot read the matrix in {path}: {exc}") from exc


def _read_intrinsic(folder: Path, name: str) -> np.ndarray | None:
    path = folder / "intrinsic" / name
    return read_matrix(path)[:3, :3] if path.is_file() else None


def scale_intrinsic(intrinsic: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """(3, 3) intrinsics for an image resized from (H, W) to (H', W'), pixel centres at integers."""
    scale_x, scale_y = to_size[1] / from_size[1], to_size[0] / from_size[0]
    affine = np.array([[scale_x, 0, 0.5 * scale_x - 0.5], [0, scale_y, 0.5 * scale_y - 0.5], [0, 0, 1.0]])
    return affine @ intrinsic


def _read_dense(path: Path) -> np.ndarray:
    """An ID map or depth map from .png (any integer depth) or .npy."""
    try:
        return np.load(path) if path.suffix == ".npy" else np.asarray(Image.open(path))
    except (OSError, ValueError) as exc:
        raise SceneFormatError(f"cannot read {path}: {exc}") from exc


def _resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) -> (H', W') taking the source pixel whose centre is nearest each target centre."""
    if array.shape[:2] == size:
        return array
    rows = np.minimum(((np.arange(size[0]) + 0.5) * array.shape[0] / size[0]).astype(np.int64), array.shape[0] - 1)
    columns = np.minimum(((np.arange(size[1]) + 0.5) * array.shape[1] / size[1]).astype(np.int64), array.shape[1] - 1)
    return array[rows[:, None], columns[None, :]]


def _read_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    try:
        image = Image.open(path).convert("RGB")
    except OSError as exc:
        raise SceneFormatError(f"cannot read image {path}: {exc}") from exc
    if image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def _first_dir(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / name for name in names if (folder / name).is_dir()), None)


def read_scannet_scene(
    folder: Path, views: int | None = None, depth_scale: float = 1000.0, classes: ClassTable | None = None
) -> Scene:
    """One ScanNet-style scene folder as a :class:`Scene` (see the module docstring).

    Args:
        folder: the scene folder.
        views: read only this many frames, spread evenly over the valid ones (None: all).
        depth_scale: depth units per metre in the depth PNGs.
        classes: what the label maps' IDs mean (None: the IDs kept, no class names).
    """
    folder = Path(folder)
    if not is_scannet_scene(folder):
        raise SceneFormatError(f"{folder} is not a ScanNet-style scene; it needs color/ and pose/ folders")
    stems, camera_to_world = [], []
    for stem in _frame_stems(folder):
        pose_path = folder / "pose" / f"{stem}.txt"
        if not pose_path.is_file():
            raise SceneFormatError(f"frame {stem} of {folder} has no pose file {pose_path}")
        pose = read_matrix(pose_path)
        if pose.shape != (4, 4):
            raise SceneFormatError(f"{pose_path} must hold a 4 x 4 camera-to-world matrix, got {pose.shape}")
        if np.isfinite(pose).all():
            stems.append(stem)
            camera_to_world.append(pose)
    if not stems:
        raise SceneFormatError(f"every pose in {folder / 'pose'} is invalid (not finite); nothing to read")
    chosen = select_views(len(stems), views)
    stems = [stems[i] for i in chosen]
    poses = np.stack([camera_to_world[i] for i in chosen])
    return _assemble(folder, stems, poses, depth_scale, classes)


def _assemble(
    folder: Path, stems: list[str], camera_to_world: np.ndarray, depth_scale: float, classes: ClassTable | None
) -> Scene:
    color_paths = [_find_file(folder / "color", stem, COLOR_SUFFIXES) for stem in stems]
    with Image.open(color_paths[0]) as first:
        color_size = (first.height, first.width)
    depth_dir = folder / "depth"
    depth_maps = [_read_dense(depth_dir / f"{stem}.png") for stem in stems] if depth_dir.is_dir() else None
    size = depth_maps[0].shape[:2] if depth_maps else color_size
    intrinsic = _read_intrinsic(folder, "intrinsic_depth.txt") if depth_maps else None
    if intrinsic is None:
        color_intrinsic = _read_intrinsic(folder, "intrinsic_color.txt")
        if color_intrinsic is None:
            raise SceneFormatError(f"{folder / 'intrinsic' / 'intrinsic_color.txt'} is missing")
        intrinsic = scale_intrinsic(color_intrinsic, color_size, size)
    depth = (
        np.stack([_resize_nearest(d, size).astype(np.float32) / depth_scale for d in depth_maps])
        if depth_maps
        else np.zeros((len(stems),) + size, dtype=np.float32)
    )
    instance_ids = _read_id_maps(folder, INSTANCE_DIRS, stems, size)
    class_ids = _read_id_maps(folder, LABEL_DIRS, stems, size)
    if class_ids is not None and classes is not None:
        class_ids = classes.apply(class_ids)
    world_to_camera = np.linalg.inv(camera_to_world)[:, :3, :4]
    present = np.unique(instance_ids) if instance_ids is not None else np.zeros(0)
    return Scene(
        images=np.stack([_read_image(path, size) for path in color_paths]),
        depth=depth,
        intrinsic=np.repeat(intrinsic[None].astype(np.float32), len(stems), axis=0),
        extrinsic=world_to_camera.astype(np.float32),
        instance_ids=instance_ids if instance_ids is not None else np.zeros((len(stems),) + size, np.int32),
        class_ids=class_ids,
        frame_names=stems,
        instances={int(i): InstanceInfo(class_name="object", kind="scan") for i in present if i != 0},
        class_names=dict(classes.names) if class_ids is not None and classes is not None else {},
        metadata={"source": "scannet", "folder": str(folder)},
    )


def _read_id_maps(folder: Path, names: tuple[str, ...], stems: list[str], size: tuple[int, int]):
    """(S, H, W) int32 ID maps from the first existing folder of ``names``, or None if none exists."""
    directory = _first_dir(folder, names)
    if directory is None:
        return None
    maps = []
    for stem in stems:
        path = _find_file(directory, stem, (".png", ".npy"))
        if path is None:
            raise SceneFormatError(f"frame {stem} has no ID map in {directory} (expected {stem}.png or .npy)")
        maps.append(_resize_nearest(_read_dense(path), size).astype(np.int32))
    return np.stack(maps)
