"""Per-view instance masks: ``masks/instance_ids_<view>.png`` (16-bit IDs) and ``masks/overlay_<view>.png``.

The ID PNGs are single-channel 16-bit greyscale (PIL mode "I;16") holding the instance ID of
each pixel exactly (0 = none); the overlays blend the image with each instance's colour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from iggt.errors import InputError
from iggt.export.colours import instance_colours
from iggt.export.naming import view_names
from iggt.export.options import ExportOptions
from iggt.export.selection import public_exporter, to_uint8
from iggt.export.view_files import map_views, save_rgb_png
from iggt.structures import Instances, Predictions

UINT16_MAX = 65535


def write_masks(predictions: Predictions, instances: Instances, out_dir: Path, options: ExportOptions) -> list[Path]:
    """Write an ID PNG and an overlay PNG per view under ``out_dir/masks``; returns their paths."""
    check_id_range(instances.labels)
    folder = out_dir / "masks"
    folder.mkdir(parents=True, exist_ok=True)
    num_views = len(instances.labels)
    id_names, overlay_names = view_names(num_views, "instance_ids"), view_names(num_views, "overlay")

    def write_view(view: int) -> list[Path]:
        labels = np.asarray(instances.labels[view])
        overlay = overlay_image(np.asarray(predictions.images[view]), labels, options.overlay_alpha)
        return [save_id_png(labels, folder / id_names[view]), save_rgb_png(overlay, folder / overlay_names[view])]

    return [path for paths in map_views(write_view, num_views, options.threads) for path in paths]


export_masks = public_exporter(write_masks)


def check_id_range(labels: np.ndarray) -> None:
    """InputError unless every instance ID fits a 16-bit ID PNG (checked before any file is written)."""
    if labels.min(initial=0) < 0 or labels.max(initial=0) > UINT16_MAX:
        raise InputError(f"instance IDs must lie in [0, {UINT16_MAX}] for 16-bit masks; relabel the instances")


def save_id_png(labels: np.ndarray, path: Path) -> Path:
    """(H, W) instance IDs, already in range (:func:`check_id_range`) -> 16-bit greyscale PNG at ``path``."""
    Image.fromarray(labels.astype(np.uint16)).save(path)
    return path


def overlay_image(image: np.ndarray, labels: np.ndarray, alpha: float) -> Image.Image:
    """(H, W, 3) image in [0, 1] and (H, W) labels -> RGB image tinted by instance (0 untouched)."""
    tint = instance_colours(labels).astype(np.float32) / 255
    blended = np.where((labels > 0)[..., None], (1 - alpha) * image + alpha * tint, image)
    return Image.fromarray(to_uint8(blended))
