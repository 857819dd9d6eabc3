"""Path A: an RGB-D capture with poses plus per-frame 2D masks -> a scene with 3D-consistent IDs.

The association (:mod:`iggt.curate.association`) decides which masks are one object; this module
checks the inputs against each other, runs it, and paints the result into a Scene plus a report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np

from iggt.curate.association import (
    AssociationConfig,
    MaskIndex,
    agglomerate,
    inconsistent_members,
    judge,
    masklet_links,
    pair_evidence,
    under_segmented,
)
from iggt.curate.mask_files import FrameMasks
from iggt.curate.pixel_votes import split_mixed_masks
from iggt.curate.report import CurationReport, RejectedMask
from iggt.curate.reprojection import world_points
from iggt.errors import InputError
from iggt.structures.scene import InstanceInfo, Scene

CURATED_KIND = "curated"


@dataclass
class Curated:
    """A curated scene and what was done to make it."""

    scene: Scene
    report: CurationReport


def check_masks_match(capture: Scene, masks: list[FrameMasks]) -> None:
    """InputError naming the frame whose masks do not fit the capture."""
    if len(masks) != capture.num_views:
        raise InputError(f"{len(masks)} frames of masks for a capture of {capture.num_views} frames")
    for name, frame_masks in zip(capture.frame_names, masks, strict=True):
        if frame_masks.labels.shape != capture.image_size:
            raise InputError(
                f"frame {name}: masks are {frame_masks.labels.shape} but the frame is {capture.image_size}"
            )
    if not any(frame_masks.count for frame_masks in masks):
        raise InputError("every frame's masks are empty; nothing to curate (check the --masks folder)")


def mask_tracks(masks: list[FrameMasks]) -> np.ndarray:
    """(N,) masklet ID of every mask in :class:`MaskIndex` order, -1 where the segmenter gave none."""
    tracks = [m.tracks if m.tracks is not None else [-1] * m.count for m in masks]
    return np.array([t for frame in tracks for t in frame], dtype=np.int64)


def _split_masklets(tracks: np.ndarray, instance: np.ndarray) -> list[dict]:
    """Masklets whose kept masks ended in several instances (the geometry overruled the track)."""
    rows = []
    for track in np.unique(tracks[tracks >= 0]):
        ids = sorted({int(i) for i in instance[(tracks == track) & (instance > 0)]})
        if len(ids) > 1:
            rows.append({"masklet": int(track), "instances": ids})
    return rows


def _rejections(index: MaskIndex, verdict_flags: dict[str, np.ndarray]) -> np.ndarray:
    """(N,) the first reason each mask is rejected for ('' = kept), in the order of ``verdict_flags``."""
    reason = np.full(index.count, "", dtype=object)
    for text, flags in verdict_flags.items():
        reason[(reason == "") & flags] = text
    return reason


def associate(capture: Scene, masks: list[FrameMasks], config: AssociationConfig, on_frame: Callable[[], None]):
    """(N,) instance of every mask (0 = rejected, else 1..K), rejection reasons, the mask index, the
    (S, H, W) label maps and the (S, H, W, 3) world points."""
    labels = np.stack([m.labels for m in masks])
    index = MaskIndex.build(labels, capture.depth, [m.count for m in masks], config.stride)
    world = world_points(capture.depth, capture.intrinsic, capture.extrinsic)
    verdict = judge(labels, capture.depth, capture.intrinsic, capture.extrinsic, world, index, config, on_frame)
    together, apart = pair_evidence(verdict, index)
    tracks = mask_tracks(masks)
    if (tracks >= 0).any():
        linked, separated = masklet_links(tracks, index)
        together += config.masklet_prior * linked
        apart += config.masklet_prior * separated
    reason = _rejections(
        index,
        {
            "too small": index.pixels < config.min_mask_pixels,
            "too little valid depth to place in 3D": index.points < config.min_points,
            "under-segmented: spans several masks in most frames that see it": under_segmented(verdict, index, config),
        },
    )
    owner = agglomerate(together, apart, reason == "", config.merge_threshold)
    inconsistent = inconsistent_members(owner, together, apart) & (reason == "")
    reason[inconsistent] = "inconsistent: more often apart from its instance's other masks than with them"
    owner[inconsistent] = -1
    instance = np.zeros(index.count, dtype=np.int64)
    kept = owner >= 0
    instance[kept] = np.searchsorted(np.unique(owner[kept]), owner[kept]) + 1
    return instance, reason, index, labels, world


def _number_by_size(ids: np.ndarray, instance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber the instances present in ``ids`` (S, H, W) 1..K by decreasing pixel count; ``instance``
    (N,) of every mask follows (0 for an instance no pixel kept)."""
    sizes = np.bincount(ids.reshape(-1), minlength=int(instance.max(initial=0)) + 1)
    sizes[0] = 0
    order = [i for i in np.argsort(-sizes, kind="stable") if sizes[i] > 0]
    remap = np.zeros(len(sizes), dtype=np.int32)
    remap[order] = np.arange(1, len(order) + 1)
    return remap[ids], remap[instance]


def curate_with_masks(
    capture: Scene,
    masks: list[FrameMasks],
    config: AssociationConfig | None = None,
    scene_name: str = "scene",
    on_frame: Callable[[], None] = lambda: None,
) -> Curated:
    """Path A on a capture (a Scene whose instance maps are ignored) and its per-frame masks.

    ``on_frame`` is called once per frame of the association (progress bars).
    """
    config = config or AssociationConfig()
    check_masks_match(capture, masks)
    instance, reason, index, labels, world = associate(capture, masks, config, on_frame)
    ids = np.zeros(labels.shape, dtype=np.int32)
    for s in range(capture.num_views):
        lookup = np.concatenate([[0], instance[index.offsets[s] : index.offsets[s + 1]]]).astype(np.int32)
        ids[s] = lookup[labels[s]]
    repaired = []
    if config.pixel_repair:
        ids, repaired = split_mixed_masks(
            ids,
            labels,
            capture.depth,
            capture.intrinsic,
            capture.extrinsic,
            world,
            config.stride,
            config.depth_tolerance,
            config.repair_share,
            config.repair_votes,
            config.min_points,
        )
    ids, instance = _number_by_size(ids, instance)
    reason[(instance == 0) & (reason == "")] = "every pixel moved to other instances by the pixel votes"
    count = int(ids.max(initial=0))
    scene = replace(
        capture,
        instance_ids=ids,
        instances={i: InstanceInfo(class_name="object", kind=CURATED_KIND) for i in range(1, count + 1)},
        metadata={**capture.metadata, "curation": {"path": "masks", "instances": count}},
    )
    sources = [source for m in masks for source in m.sources]
    rows = [
        {
            "id": instance_id,
            "frames": [capture.frame_names[s] for s in range(capture.num_views) if (ids[s] == instance_id).any()],
            "pixels": int((ids == instance_id).sum()),
            "masks": int((instance == instance_id).sum()),
        }
        for instance_id in range(1, count + 1)
    ]
    rejected = [
        RejectedMask(capture.frame_names[index.frame[m]], sources[m], str(reason[m]))
        for m in np.flatnonzero(instance == 0)
    ]
    masked = labels > 0
    report = CurationReport(
        path="masks",
        scene=scene_name,
        frames=list(capture.frame_names),
        masks=index.count,
        instances=rows,
        rejected=rejected,
        labelled_fraction=float((ids > 0).sum() / max(masked.sum(), 1)),
        thresholds=asdict(config),
        notes={
            "masklets_split": _split_masklets(mask_tracks(masks), instance),
            "masks_split_by_pixel_votes": [
                {"frame": capture.frame_names[f], "source": masks[f].sources[label - 1]} for f, label in repaired
            ],
        },
    )
    return Curated(scene, report)
