"""Files of ``iggt segment`` and ``iggt query``.

segment: ``semantic/semantic_NNN.png`` (16-bit class IDs: 0 = no instance, 1..C the vocabulary,
C + 1 "other"), ``semantic/overlay_NNN.png``, ``points.ply`` (the export's vertex layout plus a
uint16 ``label`` = class ID), ``label_table.json`` (class ID -> name) and ``labels.json`` (per
instance: label, class ID, score, top-k). query: ``ranking.json`` plus the highlighted views and points.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from iggt.export.masks import overlay_image
from iggt.export.naming import view_names
from iggt.export.options import ExportOptions
from iggt.export.ply import VERTEX_DTYPE, point_columns, write_vertices
from iggt.export.selection import select_points
from iggt.structures.strict_json import write_strict_json
from iggt.tasks.highlight import write_highlights
from iggt.tasks.open_vocab import OTHER, InstanceLabel
from iggt.tasks.result import SavedResult

SEGMENT_FOLDER = "segment"
"""Where `iggt segment` writes inside the result by default (and `iggt ask` looks for labels)."""
LABELLED_VERTEX_DTYPE = np.dtype(VERTEX_DTYPE.descr + [("label", "<u2")])
OVERLAY_ALPHA = 0.5


def class_table(vocabulary: Sequence[str]) -> dict[int, str]:
    return {0: "none", **{i + 1: word for i, word in enumerate(vocabulary)}, len(vocabulary) + 1: OTHER}


def semantic_maps(result: SavedResult, labels: Sequence[InstanceLabel]) -> np.ndarray:
    """(S, H, W) uint16 class ID per pixel, through each pixel's instance."""
    lookup = np.zeros(int(result.instances.labels.max(initial=0)) + 1, np.uint16)
    for label in labels:
        lookup[label.instance_id] = label.class_id
    return lookup[result.instances.labels]


def write_segmentation(
    result: SavedResult, labels: Sequence[InstanceLabel], vocabulary: Sequence[str], info: dict, folder: Path
) -> list[Path]:
    classes = class_table(vocabulary)
    maps = semantic_maps(result, labels)
    semantic_dir = folder / "semantic"
    semantic_dir.mkdir(parents=True, exist_ok=True)
    written = []
    names = zip(view_names(result.num_views, "semantic"), view_names(result.num_views, "overlay"), strict=True)
    for view, (map_name, overlay_name) in enumerate(names):
        Image.fromarray(maps[view]).save(semantic_dir / map_name)
        overlay_image(result.predictions.images[view], maps[view], OVERLAY_ALPHA).save(semantic_dir / overlay_name)
        written += [semantic_dir / map_name, semantic_dir / overlay_name]
    written.append(_labelled_points(result, maps, folder / "points.ply"))
    written.append(write_strict_json(folder / "label_table.json", {str(k): v for k, v in classes.items()}))
    table = [
        {
            "id": label.instance_id,
            "label": label.label,
            "class_id": label.class_id,
            "score": label.score,
            "top": [{"label": word, "score": score} for word, score in label.ranked],
        }
        for label in labels
    ]
    document = {**info, "vocabulary": list(vocabulary), "classes": {str(k): v for k, v in classes.items()}}
    written.append(write_strict_json(folder / "labels.json", {**document, "instances": table}))
    return written


def _labelled_points(result: SavedResult, maps: np.ndarray, path: Path) -> Path:
    selection = select_points(result.predictions, result.instances, ExportOptions(), ExportOptions().max_points)
    labels = maps.reshape(-1)[selection.index]
    return write_vertices(path, LABELLED_VERTEX_DTYPE, {**point_columns(selection), "label": labels})


def write_query(
    result: SavedResult, text: str, ranking: Sequence[tuple[int, float]], top_k: int, info: dict, folder: Path
) -> list[Path]:
    """``ranking.json`` (every instance, best first) and the top ``top_k`` highlighted."""
    shown = [instance_id for instance_id, _ in ranking[:top_k]]
    document = {
        **info,
        "query": text,
        "highlighted": shown,
        "instances": [{"rank": r + 1, "id": i, "score": s} for r, (i, s) in enumerate(ranking)],
    }
    return [write_strict_json(folder / "ranking.json", document), *write_highlights(result, shown, folder)]


def saved_labels(result: SavedResult) -> dict[int, str] | None:
    """Instance ID -> label from the result's default segmentation, when there is one."""
    import json

    path = result.folder / SEGMENT_FOLDER / "labels.json"
    try:
        return {int(row["id"]): str(row["label"]) for row in json.loads(path.read_text())["instances"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None
