"""Path B: a mesh with per-vertex instance labels + the capture's poses and intrinsics -> per-frame
instance masks, optionally sharpened with 2D proposals (the paper's RGB-D scan refinement).

1. Project: render the labelled mesh into every frame by z-buffer (:mod:`iggt.curate.rasterize`),
   so occluded objects never show. Where the sensor has depth and the rendered surface lies more
   than ``depth_tolerance`` (relative) away from it, the mesh does not describe what the camera saw
   (moved objects, holes): those pixels get no ID.
2. Refine (when 2D proposals are given): each proposal takes the ID most of its projected pixels
   carry, if at least ``min_match`` of them agree (a proposal spanning several objects is not
   trusted); proposals of one ID are merged by painting them all with it, so borders follow the
   image instead of the mesh. Matching and painting repeat on the refined map until the uncovered
   fraction of valid-depth pixels falls below ``max_uncovered`` or nothing changes (at most
   ``max_iterations`` rounds).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from iggt.curate.from_masks import Curated, check_masks_match
from iggt.curate.mask_files import FrameMasks
from iggt.curate.mesh_labels import LabelledMesh
from iggt.curate.rasterize import render_labels
from iggt.curate.report import CurationReport, RejectedMask
from iggt.structures.scene import InstanceInfo, Scene


@dataclass(frozen=True)
class MeshConfig:
    """Thresholds of path B (the defaults are used by `iggt curate mesh`)."""

    depth_tolerance: float = 0.05
    """Largest relative difference of rendered and sensor depth where the mesh is trusted."""
    min_match: float = 0.8
    """Fraction of a proposal's labelled pixels that must carry one ID for it to be matched."""
    max_uncovered: float = 0.01
    """Stop refining when at most this fraction of valid-depth pixels has no ID."""
    max_iterations: int = 5
    """Most rounds of matching and painting."""


def project_mesh(capture: Scene, mesh: LabelledMesh, config: MeshConfig) -> tuple[np.ndarray, float | None]:
    """(S, H, W) int32 rendered IDs with sensor-disagreeing pixels cleared, and the fraction of
    rendered pixels with sensor depth that agree with it (None for a capture without depth, e.g.
    ScanNet++'s DSLR, where nothing can be checked)."""
    face_instance = mesh.face_instance()
    ids = np.zeros(capture.instance_ids.shape, dtype=np.int32)
    agree, compared = 0, 0
    for s in range(capture.num_views):
        values, depth = render_labels(
            mesh.vertices,
            mesh.faces,
            face_instance,
            capture.intrinsic[s].astype(np.float64),
            capture.extrinsic[s].astype(np.float64),
            capture.image_size,
        )
        sensor = capture.depth[s]
        checked = (sensor > 0) & (depth > 0)
        disagrees = checked & (np.abs(depth - sensor) > config.depth_tolerance * sensor)
        agree += int((checked & ~disagrees).sum())
        compared += int(checked.sum())
        ids[s] = np.where(disagrees, 0, values)
    return ids, agree / compared if compared else None


def refine_frame(ids: np.ndarray, proposals: FrameMasks, valid: np.ndarray, config: MeshConfig):
    """One frame's (H, W) IDs sharpened by its proposals; returns (ids, {proposal: reason} unmatched,
    [uncovered fraction after each round])."""
    current = ids.copy()
    order = np.argsort([-(proposals.labels == k).sum() for k in range(1, proposals.count + 1)], kind="stable") + 1
    history, unmatched = [], {}
    for _ in range(config.max_iterations):
        before = current.copy()
        unmatched = {}
        for label in order:  # largest first, so smaller proposals keep their area where they overlap
            region = proposals.labels == label
            under = before[region]
            under = under[under > 0]
            if not len(under):
                unmatched[int(label)] = "no projected instance under it"
                continue
            values, counts = np.unique(under, return_counts=True)
            if counts.max() < config.min_match * len(under):
                unmatched[int(label)] = "spans several projected instances"
                continue
            current[region] = values[counts.argmax()]
        history.append(float(((current == 0) & valid).sum() / max(valid.sum(), 1)))
        if history[-1] <= config.max_uncovered or np.array_equal(current, before):
            break
    return current, unmatched, history


def curate_with_mesh(
    capture: Scene,
    mesh: LabelledMesh,
    proposals: list[FrameMasks] | None = None,
    config: MeshConfig | None = None,
    scene_name: str = "scene",
    on_frame=lambda: None,
) -> Curated:
    """Path B on a capture (depth, poses and intrinsics are used; its instance maps are ignored)."""
    config = config or MeshConfig()
    if proposals is not None:
        check_masks_match(capture, proposals)
    ids, depth_agreement = project_mesh(capture, mesh, config)
    projected_labelled = float((ids > 0).mean())
    rejected, rounds = [], []
    # pixels that could carry an ID: those with sensor depth, or every pixel of a capture without any
    valid = capture.depth > 0 if (capture.depth > 0).any() else np.ones(capture.depth.shape, dtype=bool)
    if proposals is not None:
        for s, frame_proposals in enumerate(proposals):
            ids[s], unmatched, history = refine_frame(ids[s], frame_proposals, valid[s], config)
            rounds.append(len(history))
            rejected += [
                RejectedMask(capture.frame_names[s], frame_proposals.sources[label - 1], reason)
                for label, reason in unmatched.items()
            ]
            on_frame()
    present = [int(i) for i in np.unique(ids) if i > 0]
    scene = replace(
        capture,
        instance_ids=ids,
        instances={i: InstanceInfo(mesh.instance_names.get(i, "object"), "scan") for i in present},
        metadata={**capture.metadata, "curation": {"path": "mesh", "instances": len(present)}},
    )
    rows = [
        {
            "id": i,
            "frames": [capture.frame_names[s] for s in range(capture.num_views) if (ids[s] == i).any()],
            "pixels": int((ids == i).sum()),
            "masks": 0,
        }
        for i in present
    ]
    report = CurationReport(
        path="mesh",
        scene=scene_name,
        frames=list(capture.frame_names),
        masks=sum(p.count for p in proposals) if proposals else 0,
        instances=rows,
        rejected=rejected,
        labelled_fraction=float((ids > 0)[valid].mean()),
        thresholds=asdict(config),
        notes={
            "rendered_depth_agrees_with_sensor": depth_agreement,
            "labelled_fraction_projected": projected_labelled,
            "refinement_rounds": rounds,
        },
    )
    return Curated(scene, report)
