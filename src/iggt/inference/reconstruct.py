"""Photos or a video in, a reconstruction out: cameras, depth, points and 3D-consistent instances.

``reconstruct`` chains the stages (read -> preprocess -> network -> instances) and returns a
:class:`Reconstruction`, which holds the network-resolution :class:`Predictions` and
:class:`Instances` plus the depth, confidence, instance masks and intrinsics mapped back to each
input's own resolution; ``Reconstruction.save`` writes every export format.

A single image is accepted: the network runs on one view and gives its depth, points and
instances; there are no relative cameras to estimate.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from iggt.device import dtype_name, resolve_device, resolve_dtype, resolve_head_dtype
from iggt.errors import InputError
from iggt.export.reconstruction import write_original_resolution, write_summary
from iggt.inference.preprocess import (
    MappedViews,
    ResizeRecord,
    check_visible_sizes,
    map_to_original,
    preprocess_views,
)
from iggt.inference.progress import stage_progress
from iggt.inference.runner import (
    attention_backend_name,
    check_chunk_size,
    max_head_chunk,
    run_model,
    store_weights_for_inference,
)
from iggt.inference.windows import DEFAULT_OVERLAP, check_store, check_window, empty_array, plan_windows
from iggt.io.images import ImageStream, LoadedImages, open_images, views_to_keep
from iggt.model.fast_mode import FastMode, fast_mode_name, get_fast_mode
from iggt.model.hub import DEFAULT_MODEL
from iggt.model.layers.fp8_attention import check_fp8_runs
from iggt.structures.instances import Instances
from iggt.structures.predictions import Predictions

logger = logging.getLogger(__name__)

ImageSource = str | Path | Sequence[str | Path] | Sequence[np.ndarray] | np.ndarray | LoadedImages
"""What :func:`reconstruct` reads: paths (folder, scene folder, video, image files) or images."""
CROPPED_AWAY_NOTE = 0.5
"""Crop mode names a view when it drops more than this fraction of the view's pixels."""
NETWORK_INPUT = "network_input"
"""Name of the network's input in a store (``network_input.npy``, (S, 3, H, W) float32)."""
SINGLE_VIEW_NOTE = "1 view: depth, points and instances of that view only; no relative cameras to estimate"


@dataclass
class Reconstruction:
    """The result of :func:`reconstruct` for S views.

    Attributes:
        predictions: network outputs at the network resolution (H, W).
        instances: instance IDs at the network resolution, consistent across views.
        names: S input names (file names, or ``video#frameNNNNN``).
        records: S resize records mapping original pixels to network pixels.
        depth: S arrays (H_i, W_i) float32 z-depth at each input's resolution; 0 where the
            network never saw the pixel (cropped away).
        depth_conf: S arrays (H_i, W_i) float32 depth confidence; 0 where unseen.
        instance_labels: S arrays (H_i, W_i) int32 instance IDs; 0 = none or unseen.
            (These three are lists, or, for a run with a ``store``, :class:`MappedViews` that
            resample each view when it is read.)
        intrinsic: (S, 3, 3) float64 intrinsics in each input's pixels.
        timings: seconds per stage ("read": the input checked, files' headers and a video's frame
            count; "load model"; "preprocess": the views decoded and brought to the network's size;
            "model", "instances", "map to original resolution", then "export" once saved). A windowed
            run has "windows" instead of "model" and "instances", and "windows: network", the part
            of it its network passes took (on a GPU they overlap the windows' instance step).
        notes: facts the user should know (sampling, single view, ...).
        model_name: what the network was loaded from.
        device, dtype, head_dtype: where and in which precision (trunk, heads) the network ran.
        attention: the attention kernel of the trunk ("fa3" or "sdpa").
        fast_mode: how the trunk's global attention ran ("exact", or an approximate preset of
            :data:`iggt.model.fast_mode.FAST_MODES`; "custom" for a hand-made FastMode).
    """

    predictions: Predictions
    instances: Instances
    names: list[str]
    records: list[ResizeRecord]
    depth: Sequence[np.ndarray]
    depth_conf: Sequence[np.ndarray]
    instance_labels: Sequence[np.ndarray]
    intrinsic: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    model_name: str = ""
    device: str = ""
    dtype: str = ""
    head_dtype: str = ""
    attention: str = ""
    fast_mode: str = "exact"

    @property
    def num_views(self) -> int:
        return self.predictions.num_views

    @property
    def extrinsic(self) -> np.ndarray:
        """(S, 3, 4) camera-from-world (OpenCV), world = the first camera; independent of resolution."""
        return self.predictions.extrinsic

    def save(
        self,
        out_dir: str | Path,
        formats: Sequence[str] | None = None,
        overwrite: bool = False,
        progress: bool = False,
    ) -> list[Path]:
        """Write the export formats (all by default; see ``iggt.export.EXPORTERS``) and
        ``reconstruction.json`` (inputs, model, timings, cameras in original pixels) into ``out_dir``, atomically.

        Returns the written paths. A non-empty ``out_dir`` is an error unless ``overwrite``, which
        replaces it as a whole. ``progress`` shows the elapsed time on stderr.
        """
        from iggt.export import DEFAULT_FORMATS, export_all

        formats = tuple(formats or DEFAULT_FORMATS)
        writers = {
            "summary": partial(write_summary, self.to_json()),
            "original_resolution": partial(write_original_resolution, self.instance_labels, self.depth),
        }
        with _timed(self.timings, "export"), stage_progress(f"writing {' '.join(formats)}", progress):
            written = export_all(
                self.predictions, self.instances, out_dir, formats=formats, overwrite=overwrite, extra_writers=writers
            )
        return [path for paths in written.values() for path in paths]

    def to_json(self) -> dict:
        """Inputs, model, timings and the per-view resolution mapping, as plain JSON types."""
        return {
            "model": self.model_name,
            "device": self.device,
            "dtype": self.dtype,
            "head_dtype": self.head_dtype,
            "attention": self.attention,
            "fast_mode": self.fast_mode,
            "num_views": self.num_views,
            "num_instances": self.instances.num_instances,
            "network_size": list(self.predictions.image_size),
            "notes": self.notes,
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "views": [
                {
                    "name": name,
                    "original_size": list(record.original_size),
                    "scale": [record.scale_x, record.scale_y],
                    "offset": [record.left, record.top],
                    "intrinsic": intrinsic.tolist(),
                    "extrinsic": extrinsic.tolist(),
                }
                for name, record, intrinsic, extrinsic in zip(
                    self.names, self.records, self.intrinsic, self.extrinsic, strict=True
                )
            ],
        }


def reconstruct(
    images_or_paths: ImageSource,
    model: str | Path | torch.nn.Module = DEFAULT_MODEL,
    *,
    device: str = "auto",
    dtype: str = "auto",
    head_dtype: str = "auto",
    max_frames: int | None = None,
    chunk_size: int | None = None,
    mode: Literal["crop", "pad"] = "crop",
    instance_config=None,
    fps: float | None = None,
    frames: int | None = None,
    progress: bool = True,
    window: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    store: str | Path | None = None,
    fast_mode: str | FastMode | None = None,
) -> Reconstruction:
    """Reconstruct a scene from unposed images.

    Args:
        images_or_paths: a folder, a scene folder (with images/), a video, image files, or
            in-memory images (H, W, 3) (uint8, or floats in [0, 1]).
        model: a shipped model name ("iggt-small"), a weights path, a hub id, or an IGGT.
        device, dtype, head_dtype: see :func:`iggt.inference.runner.run_model`.
        max_frames: use at most this many views, evenly spaced.
        chunk_size: frames per dense-head pass (memory only; outputs unchanged).
        mode: "crop" or "pad" (see :mod:`iggt.inference.preprocess`).
        instance_config: an :class:`iggt.instances.config.InstanceConfig`; None for the defaults.
        fps, frames: video sampling (one of them, or neither for one frame per second).
        progress: show progress bars on stderr.
        window, overlap: more views than ``window`` run in windows of that many views sharing
            ``overlap`` views, aligned and linked into one result (:mod:`iggt.inference.windowed`);
            None: one pass when the device's free memory holds all views, else a window chosen
            from it (:mod:`iggt.inference.window_size`, said in the notes).
        store: an empty or new folder: the network's input (``network_input.npy``) and a
            windowed run's result are written there as memory-mapped ``.npy`` files instead of
            being held in memory (see docs/long_captures.md), and the automatic window sets no host
            memory aside for the result; a run in one pass keeps its result in memory. A windowed
            run with a store also fixes glibc's mmap threshold (:func:`reconstruct_windows`).
        fast_mode: "exact" (None, the default) or an approximate preset of
            :data:`iggt.model.fast_mode.FAST_MODES` ("avggt", "kv-subsample", "merge"; "fp8" on
            Hopper with FlashAttention-3), faster on long inputs.
    """
    # Every option is checked before the slow stages, so a typo never costs a model load.
    target = resolve_device(device)
    compute_dtype = resolve_dtype(dtype, target)
    heads_dtype = resolve_head_dtype(head_dtype, target)
    if mode not in ("crop", "pad"):
        raise InputError(f"unknown mode {mode!r}; use 'crop' or 'pad'")
    if chunk_size is not None:
        check_chunk_size(chunk_size)
    if window is not None:
        check_window(window, overlap)
    if store is not None:
        store = check_store(store)
    global_attention = get_fast_mode(fast_mode)
    if global_attention.fp8_attention:
        check_fp8_runs(target)
    timings: dict[str, float] = {}
    with _timed(timings, "read"):
        loaded = _open_inputs(images_or_paths, fps, frames, max_frames, progress)
        if loaded.stored_sizes is not None:  # a video's frames are checked as they are decoded
            check_visible_sizes(loaded.stored_sizes, loaded.names)
    with _timed(timings, "load model"), stage_progress("loading the model", progress):
        network, model_name = _resolve_model(model)
        if not isinstance(model, torch.nn.Module):  # loaded here, so its weights are ours to store
            store_weights_for_inference(network, target, compute_dtype)
    with _timed(timings, "preprocess"):
        # One view at a time at its own resolution; with a store the network's input lives there too.
        config, allocate = network.config, None if store is None else partial(_stored_input, store)
        tensor, records = preprocess_views(
            loaded, len(loaded), config.img_size, config.patch_size, mode, names=loaded.names, allocate=allocate
        )
    from iggt.inference.windowed import run_windowed  # both import the clustering (sklearn) only when run
    from iggt.instances import extract_instances

    notes = list(loaded.notes)
    if window is None and loaded.num_views > 1:
        from iggt.inference.window_size import automatic_window

        size, on_disk = tuple(tensor.shape[-2:]), store is not None
        chunk = max_head_chunk(*size) if chunk_size is None else chunk_size  # any window's passes fit it
        choice = automatic_window(network, target, loaded.num_views, size, chunk, overlap, result_on_disk=on_disk)
        logger.info("window: %s", choice.note)
        if choice.window is not None:
            window, overlap = choice.window, choice.overlap
            notes.append(choice.note)
    if window is not None and loaded.num_views > window:
        plan = plan_windows(loaded.num_views, window, overlap)
        notes.append(f"windowed: {plan.describe()}")
        settings = _instance_config(instance_config, target)
        with _timed(timings, "windows"), _memory_hint("reconstructing windows of", window, "a smaller --window"):
            run = run_windowed(
                network, tensor, plan, settings, device=target, dtype=compute_dtype, chunk_size=chunk_size,
                head_dtype=heads_dtype, progress=progress, store=store, fast_mode=global_attention,
            )  # fmt: skip
        timings["windows: network"] = run.network_s
        predictions, instances = run.predictions, run.instances
        notes += run.notes + ([f"the windows' result is stored in {store}"] if store is not None else [])
    else:
        if window is not None:
            notes.append(f"{loaded.num_views} views fit in one window of {window}: one pass")
        if store is not None:
            notes.append(f"one pass: the result is held in memory, {store} holds the network's input only")
        with _timed(timings, "model"):
            predictions = run_model(
                network, tensor, target, compute_dtype, chunk_size, progress=progress, head_dtype=heads_dtype,
                fast_mode=global_attention,
            )  # fmt: skip
        stage = stage_progress("clustering instances", progress)
        with _timed(timings, "instances"), stage, _memory_hint("clustering instances of", loaded.num_views):
            instances = extract_instances(predictions, _instance_config(instance_config, target))
    notes += [SINGLE_VIEW_NOTE] if loaded.num_views == 1 else []
    if len({record.original_size for record in records}) > 1:
        fit = "scaled to cover it and centre-cropped" if mode == "crop" else "scaled to fit and padded"
        height, width = records[0].network_size
        notes.append(f"views differ in size: each was {fit} to {width}x{height}")
    notes += _cropped_away_notes(records, loaded.names)
    with _timed(timings, "map to original resolution"):
        # with a store the maps are resampled when read (written, exported), never all held at once
        original = map_to_original if store is None else MappedViews
        depth = original(predictions.depth, records)
        depth_conf = original(predictions.depth_conf, records)
        instance_labels = original(instances.labels, records, nearest=True)
    return Reconstruction(
        predictions=predictions,
        instances=instances,
        names=loaded.names,
        records=records,
        depth=depth,
        depth_conf=depth_conf,
        instance_labels=instance_labels,
        intrinsic=np.stack([r.intrinsic_to_original(k) for r, k in zip(records, predictions.intrinsic, strict=True)]),
        timings=timings,
        notes=notes,
        model_name=model_name,
        device=str(target),
        dtype=dtype_name(compute_dtype),
        head_dtype=dtype_name(heads_dtype),
        attention=attention_backend_name(network, target, compute_dtype),
        fast_mode=fast_mode_name(global_attention),
    )


def _open_inputs(images_or_paths: ImageSource, fps, frames, max_frames, progress: bool) -> ImageStream:
    if isinstance(images_or_paths, LoadedImages):
        return ImageStream.of(images_or_paths)
    if isinstance(images_or_paths, np.ndarray | torch.Tensor):
        # One (H, W, 3) image, or (S, H, W, 3) images.
        arrays = list(images_or_paths) if images_or_paths.ndim == 4 else [images_or_paths]
        return ImageStream.of(_in_memory(arrays, max_frames))
    if isinstance(images_or_paths, str | os.PathLike):
        return open_images(images_or_paths, fps=fps, frames=frames, max_frames=max_frames, progress=progress)
    if not isinstance(images_or_paths, Sequence):
        raise InputError(
            f"inputs must be a path, a list of paths or a list of (H, W, 3) images, got a "
            f"{type(images_or_paths).__name__}"
        )
    items = list(images_or_paths)
    if items and _kind(items[0], 0) == "image":
        _check_all_of_kind(items, "image")
        return ImageStream.of(_in_memory(items, max_frames))
    _check_all_of_kind(items, "path")
    return open_images(items, fps=fps, frames=frames, max_frames=max_frames, progress=progress)


def _stored_input(store: Path, shape: tuple[int, ...]) -> torch.Tensor:
    """The (S, 3, H, W) float32 network input as ``store/network_input.npy``, memory-mapped."""
    return torch.from_numpy(empty_array(shape, np.float32, store, NETWORK_INPUT))


def _kind(item, index: int) -> str:
    """ "path" or "image" for one item of the input list; InputError for anything else."""
    if isinstance(item, np.ndarray | torch.Tensor):
        return "image"
    if isinstance(item, str | os.PathLike):
        return "path"
    name = type(item).__name__
    article = "an" if name[0].lower() in "aeiou" else "a"
    raise InputError(
        f"input {index} is {article} {name} ({item!r:.40}); pass image paths (str or Path) or images as "
        "(H, W, 3) arrays"
    )


def _check_all_of_kind(items: list, kind: str) -> None:
    for index, item in enumerate(items):
        if _kind(item, index) != kind:
            raise InputError(
                f"input {index} is a {type(item).__name__} among {kind}s: pass all paths or all arrays, not a mix"
            )


def _in_memory(images: list, max_frames: int | None) -> LoadedImages:
    converted = []
    for index, image in enumerate(images):
        if isinstance(image, torch.Tensor):
            image = image.detach().cpu().numpy()
        if image.ndim != 3 or image.shape[-1] != 3:
            raise InputError(f"image {index} must be (H, W, 3) RGB, got shape {image.shape}")
        if image.dtype == np.uint8:
            converted.append(image.astype(np.float32) / 255.0)
            continue
        if not np.issubdtype(image.dtype, np.floating):
            raise InputError(f"image {index} must be uint8 or floats in [0, 1], got {image.dtype} values")
        bad = int(image.size - np.isfinite(image).sum())
        if bad:
            raise InputError(
                f"image {index} has {bad} non-finite value{'s' if bad > 1 else ''} (NaN or inf); "
                "pass RGB values in [0, 1]"
            )
        if image.min() < 0 or image.max() > 1:
            raise InputError(f"image {index} must be uint8 or floats in [0, 1], got {image.dtype} values")
        converted.append(image.astype(np.float32))
    keep, notes = views_to_keep(len(converted), max_frames, spelling="max_frames={}")
    return LoadedImages([converted[i] for i in keep], [f"image{i:04d}" for i in keep], notes)


def _cropped_away_notes(records: list[ResizeRecord], names: list[str]) -> list[str]:
    """A note per view of which crop mode drops more than CROPPED_AWAY_NOTE of the pixels."""
    notes = []
    first_height, first_width = records[0].original_size
    for record, name in zip(records, names, strict=True):
        dropped = 1.0 - record.seen_fraction()
        if dropped > CROPPED_AWAY_NOTE:
            height, width = record.original_size
            notes.append(
                f"{name}: crop mode drops {100 * dropped:.1f}% of it (aspect ratio {width / height:.2f} against "
                f"the first view's {first_width / first_height:.2f}); pad mode keeps it whole (--mode pad)"
            )
    return notes


def _resolve_model(model) -> tuple[torch.nn.Module, str]:
    if isinstance(model, torch.nn.Module):
        return model, type(model).__name__
    from iggt.model.hub import load_model

    return load_model(model), str(model)


def _instance_config(instance_config, device: torch.device):
    from iggt.instances import InstanceConfig

    config = instance_config or InstanceConfig()
    if config.device == "auto":
        # Cluster where the network ran: --device cpu must keep every stage off the GPU.
        config = replace(config, device=str(device))
    return config


@contextmanager
def _memory_hint(stage: str, frames: int, advice: str = "--max-frames with fewer frames") -> Iterator[None]:
    """Turn running out of memory (GPU or host) into a one-line hint."""
    try:
        yield
    except (torch.OutOfMemoryError, MemoryError) as exc:
        raise InputError(f"out of memory {stage} {frames} frames; try {advice}") from exc


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[stage] = time.perf_counter() - start
