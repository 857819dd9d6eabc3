"""The scene format on disk (docs/scene_format.md): one folder per scene, read and written whole.

    scene/
      scene.json            manifest: version, units, encodings, conventions, frames, instance table
      images/NNNNNN.png     RGB (or .jpg)
      depth/NNNNNN.png      uint16 z-depth / depth_scale metres, 0 = invalid (or .npy float32)
      cam/NNNNNN.npz        intrinsic (3, 3), extrinsic (3, 4) or (4, 4), camera-from-world, OpenCV
      instance/NNNNNN.png   uint16 instance IDs, 0 = none, same ID = same object in every frame
      class/NNNNNN.png      uint16 class IDs (optional)

Every violation found by the reader is a :class:`SceneFormatError` whose single line names the
scene, the frame and the problem. Writing goes to a hidden temporary folder renamed into place
when complete, so a failed write never leaves a scene that looks finished.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from iggt.errors import InputError, SceneFormatError
from iggt.io.output_dir import publish, staging_dir
from iggt.structures.scene import InstanceInfo, Scene

FORMAT_NAME = "iggt-scene"
FORMAT_VERSION = 1
MANIFEST = "scene.json"
DEPTH_ENCODINGS = ("png16", "npy")
IMAGE_FORMATS = ("png", "jpg")
_UINT16_MAX = 65535
_CONVENTIONS = {
    "camera": "OpenCV: x right, y down, z forward",
    "extrinsic": "camera-from-world: x_camera = R @ x_world + t",
    "intrinsic": "pixels; pixel (u, v) is column u, row v, the ray through image coordinate (u, v)",
    "depth": "z-depth along the optical axis in metres; 0 = invalid",
    "instance": "0 = none; the same ID is the same object in every frame",
    "class": "0 = none; IDs index the classes table",
}


@dataclass
class SceneManifest:
    """The parsed, checked scene.json of one scene folder."""

    root: Path
    image_size: tuple[int, int]
    image_format: str
    depth_encoding: str
    depth_scale: float
    has_class: bool
    frames: list[str]
    instances: dict[int, InstanceInfo]
    class_names: dict[int, str]
    metadata: dict


def _fail(root: Path, message: str) -> SceneFormatError:
    return SceneFormatError(f"scene {root}: {message}")


def read_manifest(scene_dir: str | Path) -> SceneManifest:
    """Parse and check ``scene_dir/scene.json``."""
    root = Path(scene_dir)
    path = root / MANIFEST
    if not path.is_file():
        raise _fail(root, f"{MANIFEST} missing; write scenes with iggt.io.scene_format.write_scene")
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT_NAME or data.get("version") != FORMAT_VERSION:
            raise _fail(root, f"{MANIFEST} is not {FORMAT_NAME} version {FORMAT_VERSION}")
        manifest = SceneManifest(
            root=root,
            image_size=(int(data["image_size"][0]), int(data["image_size"][1])),
            image_format=str(data["images"]["format"]),
            depth_encoding=str(data["depth"]["encoding"]),
            depth_scale=float(data["depth"].get("scale", 1.0)),
            has_class=bool(data["class"]),
            frames=[str(f) for f in data["frames"]],
            instances={int(i): InstanceInfo(str(v["class"]), str(v["kind"])) for i, v in data["instances"].items()},
            class_names={int(i): str(name) for i, name in data.get("classes", {}).items()},
            metadata=dict(data.get("metadata", {})),
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise _fail(root, f"{MANIFEST} is malformed ({type(exc).__name__}: {exc})") from exc
    if manifest.image_format not in IMAGE_FORMATS or manifest.depth_encoding not in DEPTH_ENCODINGS:
        raise _fail(
            root, f"unknown image format {manifest.image_format!r} or depth encoding {manifest.depth_encoding!r}"
        )
    if not manifest.frames or len(set(manifest.frames)) != len(manifest.frames):
        raise _fail(root, f"{MANIFEST} frames must be a non-empty list of unique names")
    return manifest


class _FrameReader:
    """Reads and checks the files of one frame against the manifest."""

    def __init__(self, manifest: SceneManifest, frame: str) -> None:
        self.manifest = manifest
        self.frame = frame

    def fail(self, message: str) -> SceneFormatError:
        return _fail(self.manifest.root, f"frame {self.frame}: {message}")

    def path(self, folder: str, extension: str) -> Path:
        path = self.manifest.root / folder / f"{self.frame}.{extension}"
        if not path.is_file():
            raise self.fail(f"{folder}/{path.name} missing")
        return path

    def png(self, folder: str) -> np.ndarray:
        path = self.path(folder, "png")
        try:
            with Image.open(path) as image:
                array = np.array(image)
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise self.fail(f"{folder}/{path.name} is unreadable ({exc})") from exc
        return self.check_size(folder, array)

    def check_size(self, folder: str, array: np.ndarray) -> np.ndarray:
        if array.shape[:2] != self.manifest.image_size:
            raise self.fail(f"{folder} is {array.shape[:2]} but {MANIFEST} says image_size {self.manifest.image_size}")
        return array

    def image(self) -> np.ndarray:
        path = self.path("images", self.manifest.image_format)
        try:
            with Image.open(path) as image:
                if image.mode != "RGB":
                    raise self.fail(f"images/{path.name} is {image.mode}, expected RGB")
                array = np.array(image)
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise self.fail(f"images/{path.name} is unreadable ({exc})") from exc
        return self.check_size("images", array)

    def labels(self, folder: str) -> np.ndarray:
        array = self.png(folder)
        if array.dtype != np.uint16 or array.ndim != 2:
            raise self.fail(f"{folder} must be a single-channel uint16 PNG, got {array.dtype} {array.shape}")
        return array.astype(np.int32)

    def depth(self) -> np.ndarray:
        if self.manifest.depth_encoding == "png16":
            stored = self.labels("depth")
            return (stored / self.manifest.depth_scale).astype(np.float32)
        path = self.path("depth", "npy")
        try:
            depth = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise self.fail(f"depth/{path.name} is unreadable ({exc})") from exc
        if depth.dtype != np.float32 or depth.ndim != 2:
            raise self.fail(f"depth/{path.name} must be float32 (H, W), got {depth.dtype} {depth.shape}")
        if not np.isfinite(depth).all() or (depth < 0).any():
            raise self.fail(f"depth/{path.name} has non-finite or negative values; store invalid depth as 0")
        return self.check_size("depth", depth)

    def cameras(self) -> tuple[np.ndarray, np.ndarray]:
        path = self.path("cam", "npz")
        try:
            with np.load(path, allow_pickle=False) as data:
                intrinsic, extrinsic = data["intrinsic"], data["extrinsic"]
        except (OSError, KeyError, ValueError) as exc:
            raise self.fail(f"cam/{path.name} needs arrays 'intrinsic' and 'extrinsic' ({exc})") from exc
        if intrinsic.shape != (3, 3) or extrinsic.shape not in ((3, 4), (4, 4)):
            raise self.fail(f"cam/{path.name} has intrinsic {intrinsic.shape}, extrinsic {extrinsic.shape}")
        if not (np.isfinite(intrinsic).all() and np.isfinite(extrinsic).all()):
            raise self.fail(f"cam/{path.name} has non-finite values")
        if extrinsic.shape == (4, 4) and not np.allclose(extrinsic[3], [0, 0, 0, 1]):
            raise self.fail(f"cam/{path.name} extrinsic's last row must be [0, 0, 0, 1]")
        rotation = extrinsic[:3, :3]
        if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-3) or np.linalg.det(rotation) < 0:
            raise self.fail(f"cam/{path.name} extrinsic rotation is not a rotation matrix")
        return intrinsic.astype(np.float32), extrinsic[:3].astype(np.float32)

    def known_ids(self, array: np.ndarray, table: dict, folder: str) -> np.ndarray:
        unknown = sorted(set(np.unique(array).tolist()) - set(table) - {0})
        if unknown:
            raise self.fail(f"{folder} has IDs {unknown[:8]} missing from the {MANIFEST} table")
        return array


def _frames(manifest: SceneManifest, frames: list[str] | None) -> list[str]:
    if frames is None:
        return manifest.frames
    unknown = [f for f in frames if f not in manifest.frames]
    if unknown:
        raise _fail(manifest.root, f"frames {unknown} are not in {MANIFEST}")
    return list(frames)


def read_geometry(scene_dir: str | Path, frames: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Depth (S, H, W), intrinsic (S, 3, 3) and extrinsic (S, 3, 4) only: no images or labels."""
    manifest = read_manifest(scene_dir)
    readers = [_FrameReader(manifest, f) for f in _frames(manifest, frames)]
    cameras = [r.cameras() for r in readers]
    depth = np.stack([r.depth() for r in readers])
    return depth, np.stack([c[0] for c in cameras]), np.stack([c[1] for c in cameras])


def read_scene(scene_dir: str | Path, frames: list[str] | None = None) -> Scene:
    """Read a scene folder (all frames, or the named ``frames`` in that order) into a Scene."""
    manifest = read_manifest(scene_dir)
    names = _frames(manifest, frames)
    images, depths, intrinsics, extrinsics, instances, classes = [], [], [], [], [], []
    for name in names:
        reader = _FrameReader(manifest, name)
        images.append(reader.image())
        depths.append(reader.depth())
        intrinsic, extrinsic = reader.cameras()
        intrinsics.append(intrinsic)
        extrinsics.append(extrinsic)
        instances.append(reader.known_ids(reader.labels("instance"), manifest.instances, "instance"))
        if manifest.has_class:
            labels = reader.labels("class")
            classes.append(reader.known_ids(labels, manifest.class_names, "class") if manifest.class_names else labels)
    return Scene(
        images=np.stack(images),
        depth=np.stack(depths),
        intrinsic=np.stack(intrinsics),
        extrinsic=np.stack(extrinsics),
        instance_ids=np.stack(instances),
        class_ids=np.stack(classes) if manifest.has_class else None,
        frame_names=names,
        instances=manifest.instances,
        class_names=manifest.class_names,
        metadata=manifest.metadata,
    )


def list_scenes(root: str | Path) -> list[Path]:
    """Scene folders (holding scene.json) directly under ``root``, sorted; ``[root]`` if it is one."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"scene root {root} is not a folder; pass a folder of scene folders")
    if (root / MANIFEST).is_file():
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file())


def _manifest_json(scene: Scene, image_format: str, depth_encoding: str, depth_scale: float) -> dict:
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "units": "metre",
        "conventions": _CONVENTIONS,
        "image_size": list(scene.image_size),
        "images": {"format": image_format},
        "depth": {"encoding": depth_encoding, "scale": depth_scale if depth_encoding == "png16" else 1.0},
        "instance": {"encoding": "png16"},
        "class": {"encoding": "png16"} if scene.class_ids is not None else None,
        "frames": list(scene.frame_names),
        "instances": {str(i): {"class": v.class_name, "kind": v.kind} for i, v in sorted(scene.instances.items())},
        "classes": {str(i): name for i, name in sorted(scene.class_names.items())},
        "metadata": scene.metadata,
    }


def _check_writable(scene: Scene, depth_encoding: str, depth_scale: float, image_format: str) -> None:
    if depth_encoding not in DEPTH_ENCODINGS or image_format not in IMAGE_FORMATS:
        raise InputError(f"depth_encoding must be one of {DEPTH_ENCODINGS} and image_format one of {IMAGE_FORMATS}")
    if depth_encoding == "png16" and float(scene.depth.max(initial=0)) * depth_scale > _UINT16_MAX:
        raise SceneFormatError(
            f"depth up to {scene.depth.max():.2f} m does not fit png16 at depth_scale {depth_scale}; "
            "lower depth_scale or use depth_encoding='npy'"
        )
    for name in ("instance_ids", "class_ids"):
        array = getattr(scene, name)
        if array is not None and array.max(initial=0) > _UINT16_MAX:
            raise SceneFormatError(f"Scene.{name} has IDs above {_UINT16_MAX}, which uint16 PNG cannot store")


def _write_frames(scene: Scene, folder: Path, image_format: str, depth_encoding: str, depth_scale: float) -> None:
    for sub in ("images", "depth", "cam", "instance") + (("class",) if scene.class_ids is not None else ()):
        (folder / sub).mkdir()
    for i, name in enumerate(scene.frame_names):
        image = Image.fromarray(scene.images[i])
        image.save(folder / "images" / f"{name}.{image_format}", **({"quality": 95} if image_format == "jpg" else {}))
        if depth_encoding == "png16":
            stored = np.round(scene.depth[i].astype(np.float64) * depth_scale).astype(np.uint16)
            Image.fromarray(stored).save(folder / "depth" / f"{name}.png")
        else:
            np.save(folder / "depth" / f"{name}.npy", scene.depth[i])
        np.savez(folder / "cam" / f"{name}.npz", intrinsic=scene.intrinsic[i], extrinsic=scene.extrinsic[i])
        Image.fromarray(scene.instance_ids[i].astype(np.uint16)).save(folder / "instance" / f"{name}.png")
        if scene.class_ids is not None:
            Image.fromarray(scene.class_ids[i].astype(np.uint16)).save(folder / "class" / f"{name}.png")


def write_scene(
    scene: Scene,
    scene_dir: str | Path,
    *,
    depth_encoding: str = "png16",
    depth_scale: float = 1000.0,
    image_format: str = "png",
    overwrite: bool = False,
) -> Path:
    """Write ``scene`` to ``scene_dir`` atomically; returns the folder.

    Args:
        depth_encoding: "png16" (uint16, metres * depth_scale, rounded: error <= 0.5 / depth_scale m)
            or "npy" (float32, exact).
        depth_scale: stored units per metre for png16 (1000 = millimetres, up to 65.535 m).
        image_format: "png" (lossless) or "jpg" (quality 95).
        overwrite: replace an existing folder (the old one is removed only after the new one is in place).
    """
    target = Path(scene_dir)
    _check_writable(scene, depth_encoding, depth_scale, image_format)
    if target.exists() and not overwrite:
        raise InputError(f"{target} already exists; pass overwrite=True (--overwrite) or choose another folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    with staging_dir(target) as temporary:
        _write_frames(scene, temporary, image_format, depth_encoding, depth_scale)
        manifest = _manifest_json(scene, image_format, depth_encoding, depth_scale)
        (temporary / MANIFEST).write_text(json.dumps(manifest, indent=1))
        publish(temporary, target, overwrite)
    return target
