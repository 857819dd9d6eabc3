"""Per-frame 2D masks from a segmenter, read into one label map per frame.

A masks folder holds, for every frame stem of the capture, one of:

- ``<stem>.png``: a label image (8- or 16-bit single channel or a palette image, 0 = no mask,
  each other value one mask), or an RGB image where each colour other than black is one mask;
- ``<stem>.json``: COCO RLE masks: a list of RLEs, a list of annotations with a ``segmentation``
  RLE (SAM's automatic mask generator with ``output_mode="coco_rle"``), or ``{"annotations": [...]}``;

or, for the whole capture, one SA-V style ``auto_masks.json``: ``{"masklet": [[rle per masklet]
per frame], "masklet_id": [...]}`` with the frames in the capture's order (SAM 2 video masklets;
a masklet absent from a frame has an empty RLE there). Masklet IDs are kept as the masks' tracks:
path A takes the masks of one masklet as one object unless the geometry contradicts it.

Overlapping masks of one frame (SAM emits nested whole / part masks) are painted largest first,
so each pixel keeps the smallest mask that covers it: the finest partition the segmenter gave.
Every problem is an InputError naming the frame and the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from iggt.curate.rle import RLEError, decode_rle
from iggt.errors import InputError

MASKLETS_FILE = "auto_masks.json"


@dataclass
class FrameMasks:
    """The masks of one frame.

    Attributes:
        labels: (H, W) int32, 0 = no mask, k = the k-th mask of this frame (1-based).
        sources: ``sources[k - 1]`` names where mask k came from, e.g. "masks/000002.json mask 3".
        tracks: ``tracks[k - 1]`` is the masklet (video track) ID of mask k when the segmenter linked
            its masks across frames (SA-V ``masklet_id``), else None for the whole frame.
    """

    labels: np.ndarray
    sources: list[str]
    tracks: list[int] | None = None

    @property
    def count(self) -> int:
        return len(self.sources)


def paint_masks(
    masks: list[np.ndarray], sources: list[str], size: tuple[int, int], tracks: list[int] | None = None
) -> FrameMasks:
    """One label map from (H, W) bool masks, largest painted first so smaller ones stay visible; a
    mask wholly covered by smaller ones keeps no pixel and is left out. ``tracks`` (one masklet ID
    per mask) follow their masks."""
    labels = np.zeros(size, dtype=np.int32)
    order = sorted(range(len(masks)), key=lambda k: -int(masks[k].sum()))
    for label, index in enumerate(order, start=1):
        labels[masks[index]] = label
    present = np.unique(labels)
    present = present[present > 0]
    remap = np.zeros(len(order) + 1, dtype=np.int32)
    remap[present] = np.arange(1, len(present) + 1)
    kept = [order[label - 1] for label in present]
    return FrameMasks(remap[labels], [sources[k] for k in kept], None if tracks is None else [tracks[k] for k in kept])


def _fail(frame: str, path: Path, problem: str) -> InputError:
    return InputError(f"frame {frame}: {path.parent.name}/{path.name} {problem}")


def _read_png(path: Path, frame: str, size: tuple[int, int]) -> FrameMasks:
    try:
        with Image.open(path) as image:
            # palette images keep their indices as labels; RGBA / LA drop the alpha channel
            array = np.array(image.convert("RGB") if image.mode in ("RGBA", "LA") else image)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise _fail(frame, path, f"is unreadable ({exc})") from exc
    if array.shape[:2] != size:
        raise _fail(frame, path, f"is {array.shape[0]}x{array.shape[1]} but the frame is {size[0]}x{size[1]}")
    if array.ndim == 3:
        codes = (array[..., 0].astype(np.int64) << 16) | (array[..., 1].astype(np.int64) << 8) | array[..., 2]
    else:
        codes = array.astype(np.int64)
    values = [int(v) for v in np.unique(codes) if v != 0]
    masks = [codes == value for value in values]
    return paint_masks(masks, [f"{path.parent.name}/{path.name} label {value}" for value in values], size)


def _annotations(data, frame: str, path: Path) -> list[dict]:
    if isinstance(data, dict) and "annotations" in data:
        data = data["annotations"]
    if not isinstance(data, list):
        raise _fail(frame, path, "must hold a list of COCO RLE masks or {'annotations': [...]}")
    return [item["segmentation"] if isinstance(item, dict) and "segmentation" in item else item for item in data]


def _decode(rle, frame: str, path: Path, where: str, size: tuple[int, int]) -> np.ndarray:
    try:
        mask = decode_rle(rle)
    except RLEError as exc:
        raise _fail(frame, path, f"{where} is corrupt RLE: {exc}") from exc
    if mask.shape != size:
        raise _fail(frame, path, f"{where} is {mask.shape[0]}x{mask.shape[1]} but the frame is {size[0]}x{size[1]}")
    return mask


def _load_json(path: Path, frame: str):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(frame, path, f"is not readable JSON ({exc})") from exc


def _read_coco(path: Path, frame: str, size: tuple[int, int]) -> FrameMasks:
    masks, sources = [], []
    for index, rle in enumerate(_annotations(_load_json(path, frame), frame, path), start=1):
        mask = _decode(rle, frame, path, f"mask {index}", size)
        if not mask.any():
            raise _fail(frame, path, f"mask {index} is empty (0 pixels); remove it from the file")
        masks.append(mask)
        sources.append(f"{path.parent.name}/{path.name} mask {index}")
    return paint_masks(masks, sources, size)


def _read_masklets(path: Path, frames: list[str], size: tuple[int, int]) -> list[FrameMasks]:
    data = _load_json(path, frames[0])
    if not isinstance(data, dict) or not isinstance(data.get("masklet"), list):
        raise _fail(frames[0], path, "must hold SA-V masklets: {'masklet': [[rle, ...] per frame], ...}")
    per_frame = data["masklet"]
    if len(per_frame) != len(frames):
        raise InputError(
            f"{path.name} has masklets for {len(per_frame)} frames but the capture has {len(frames)}; "
            "give one entry per frame, in the capture's order"
        )
    widest = max((len(f) for f in per_frame), default=0)
    try:
        ids = [int(i) for i in data.get("masklet_id") or range(1, 1 + widest)]
    except (TypeError, ValueError) as exc:
        raise _fail(frames[0], path, f"'masklet_id' must be a list of integers ({exc})") from exc
    if len(ids) < widest:
        raise _fail(frames[0], path, f"has {widest} masklets in a frame but {len(ids)} 'masklet_id' entries")
    result = []
    for frame, rles in zip(frames, per_frame, strict=True):
        masks, sources, tracks = [], [], []
        for index, rle in enumerate(rles):
            mask = _decode(rle, frame, path, f"masklet {ids[index]}", size)
            if mask.any():  # a masklet absent from this frame is an empty RLE here
                masks.append(mask)
                sources.append(f"{path.name} frame {frame} masklet {ids[index]}")
                tracks.append(ids[index])
        result.append(paint_masks(masks, sources, size, tracks))
    return result


def read_frame_masks(masks: str | Path, frames: list[str], size: tuple[int, int]) -> list[FrameMasks]:
    """The masks of each of ``frames`` (stems) at image size (H, W), from a folder or a masklet file."""
    masks = Path(masks)
    if masks.is_file() or (masks / MASKLETS_FILE).is_file():
        return _read_masklets(masks if masks.is_file() else masks / MASKLETS_FILE, frames, size)
    if not masks.is_dir():
        raise InputError(f"--masks {masks} is neither a folder of per-frame masks nor an {MASKLETS_FILE} file")
    result = []
    for frame in frames:
        png, coco = masks / f"{frame}.png", masks / f"{frame}.json"
        if png.is_file():
            result.append(_read_png(png, frame, size))
        elif coco.is_file():
            result.append(_read_coco(coco, frame, size))
        else:
            raise InputError(
                f"frame {frame}: no masks file {masks.name}/{frame}.png or {frame}.json; give every frame one"
            )
    return result
