"""Path C: images or a video without depth or poses -> the model supplies depth and cameras, the
masks come from the user's segmenter (a masks folder, as in path A) or from IGGT's own per-view
instances, then path A associates them.

The capture is built at the inputs' own resolution from :class:`iggt.inference.Reconstruction`
(depth, intrinsics and cameras mapped back to each input's pixels; depth is 0 where the network
saw nothing). Depth and poses are in the model's units (its world is the first camera's frame),
not metres; training renormalises every sample, so this does not matter for fine-tuning. The
model's depth and cameras are coarser than a sensor's and a tracker's, so path C's thresholds
(:data:`VIDEO_ASSOCIATION`) tolerate more depth error and more spill-over into neighbouring masks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from iggt.curate.association import AssociationConfig
from iggt.curate.from_masks import Curated, curate_with_masks
from iggt.curate.mask_files import FrameMasks, paint_masks, read_frame_masks
from iggt.errors import InputError
from iggt.structures.scene import InstanceInfo, Scene

VIDEO_ASSOCIATION = AssociationConfig(depth_tolerance=0.1, containment=0.7, max_split_fraction=0.75, pixel_repair=False)
"""Path C's thresholds: on iggt-small's geometry of engine rooms (6 orbit views at 224 x 224, exact
masks) path A's defaults rejected most masks as under-segmented (31-41% of pixels labelled); these
label 84-93% (docs/curation.md). The pixel repair is off: the model's reprojections are too coarse
for per-pixel votes, which moved correct pixels (benchmarks/curate_video.py: ARI 0.837 with it,
0.871 without on exact masks; 0.702 / 0.745 at realistic mask noise)."""


def frame_stems(names: list[str]) -> list[str]:
    """Plain, unique file stems for input names (``room/img_01.jpg`` -> ``img_01``, ``clip.mp4#frame00010``
    -> ``clip.mp4_frame00010``), the names that per-frame mask files must use."""
    stems = []
    for name in names:
        stem = Path(name).stem if "#" not in name else Path(name).name
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", stem).lstrip(".") or "frame"
        stems.append(stem if stem not in stems else f"{stem}_{len(stems):06d}")
    return stems


def capture_from_reconstruction(reconstruction, images: list[np.ndarray], names: list[str]) -> Scene:
    """A Scene at the inputs' resolution: ``images`` (S of (H, W, 3) floats in [0, 1]) named ``names``,
    the model's depth, intrinsics and cameras; its instance maps are the model's own instances."""
    sizes = {image.shape[:2] for image in images}
    if len(sizes) != 1:
        raise InputError(f"curating a video needs inputs of one size; got {sorted(sizes)}; resize them first")
    labels = np.stack(reconstruction.instance_labels).astype(np.int32)
    return Scene(
        images=np.stack([np.round(np.clip(image, 0, 1) * 255).astype(np.uint8) for image in images]),
        depth=np.stack(reconstruction.depth).astype(np.float32),
        intrinsic=reconstruction.intrinsic.astype(np.float32),
        extrinsic=reconstruction.extrinsic.astype(np.float32),
        instance_ids=labels,
        class_ids=None,
        frame_names=frame_stems(names),
        instances={int(i): InstanceInfo("object", "iggt") for i in np.unique(labels) if i > 0},
        metadata={"source": "video", "model": reconstruction.model_name},
    )


def own_instance_masks(capture: Scene) -> list[FrameMasks]:
    """The model's instances of every view as independent per-frame masks (their IDs are dropped, so
    path A re-derives the association from geometry alone)."""
    result = []
    for name, ids in zip(capture.frame_names, capture.instance_ids, strict=True):
        present = [int(i) for i in np.unique(ids) if i > 0]
        result.append(
            paint_masks([ids == i for i in present], [f"iggt {name} instance {i}" for i in present], capture.image_size)
        )
    return result


def curate_video(
    source,
    model="iggt-small",
    masks: str | Path | None = None,
    config: AssociationConfig | None = None,
    scene_name: str = "scene",
    device: str = "auto",
    max_frames: int | None = None,
    fps: float | None = None,
    progress: bool = False,
    on_frame: Callable[[], None] = lambda: None,
) -> Curated:
    """Path C: reconstruct ``source`` (a folder of images, image files or a video) with ``model``,
    take masks from the folder ``masks`` (frame stems as :func:`frame_stems` names them) or, when
    None, from the model's own instances, and associate them with path A."""
    from iggt.inference.reconstruct import reconstruct
    from iggt.io.images import load_images

    loaded = load_images(source, fps=fps, max_frames=max_frames, progress=progress)
    sizes = {image.shape[:2] for image in loaded.images}
    if len(sizes) != 1:
        raise InputError(f"curating a video needs inputs of one size; got {sorted(sizes)}; resize them first")
    # the user's masks are read and checked before the model runs, so a missing file costs no model load
    user_masks = None if masks is None else read_frame_masks(masks, frame_stems(loaded.names), sizes.pop())
    reconstruction = reconstruct(loaded.images, model, device=device, progress=progress)
    capture = capture_from_reconstruction(reconstruction, loaded.images, loaded.names)
    frame_masks = own_instance_masks(capture) if user_masks is None else user_masks
    config = config or VIDEO_ASSOCIATION
    curated = curate_with_masks(capture, frame_masks, config, scene_name, on_frame)
    curated.report.path = "video"
    curated.scene = replace(
        curated.scene,
        metadata={
            **curated.scene.metadata,
            "curation": {
                **curated.scene.metadata["curation"],
                "path": "video",
                "masks": "iggt" if masks is None else "user",
            },
        },
    )
    return curated
