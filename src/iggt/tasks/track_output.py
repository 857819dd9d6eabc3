"""Files of a track: track.json, a mask PNG per view, the instance's points as PLY."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from iggt.export.naming import view_names
from iggt.export.ply import write_vertices, xyz_rgb_columns
from iggt.structures.strict_json import write_strict_json
from iggt.tasks.tracking import InstanceTrack

POINT_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])


def write_track(track: InstanceTrack, folder: Path) -> list[Path]:
    """Write ``track.json``, ``masks/mask_NNN.png`` (8-bit, 255 = the instance) and ``points.ply`` into ``folder``."""
    masks_dir = folder / "masks"
    masks_dir.mkdir(parents=True, exist_ok=True)
    written = [write_strict_json(folder / "track.json", track.to_json())]
    for mask, name in zip(track.masks, view_names(len(track.masks), "mask"), strict=True):
        Image.fromarray(mask.astype(np.uint8) * 255).save(masks_dir / name)
        written.append(masks_dir / name)
    points = write_vertices(folder / "points.ply", POINT_DTYPE, xyz_rgb_columns(track.points, track.colours))
    return [*written, points]
