"""Bringing images of any size to the model's resolution, and mapping outputs back exactly.

Two modes, as VGGT's loader:
- ``crop``: scale so the width is ``img_size`` and centre-crop the height to a multiple of the
  patch size (at most ``img_size``); every view shares the first view's network size, and a view
  of another aspect ratio is scaled to cover it and centre-cropped.
- ``pad``: scale so the longer side is ``img_size`` and centre the image on an
  ``img_size x img_size`` canvas of white (or black); nothing is lost.

Each view keeps a :class:`ResizeRecord`: its scale and crop or pad offset, from which pixel
coordinates, intrinsics and dense maps are converted by the one pixel mapping of
:mod:`iggt.geometry.resize`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from iggt.errors import InputError
from iggt.geometry.resize import (
    nearest_original_pixel,
    original_coordinate,
    original_intrinsics,
    resize_intrinsics,
    resized_coordinate,
)
from iggt.model.config import IGGTConfig

PAD_VALUES = {"white": 1.0, "black": 0.0}
MIN_IMAGE_SIDE = IGGTConfig.patch_size
"""Shortest image side accepted: one patch of every preset (14 px), so known before a model loads."""


@dataclass(frozen=True)
class ResizeRecord:
    """How one view went from its original pixels to the network's pixels.

    A point at original pixel coordinate (u, v) lands at network coordinate
    ``((u + 0.5) * scale_x - 0.5 + left, (v + 0.5) * scale_y - 0.5 + top)``
    (:func:`iggt.geometry.resized_coordinate`).

    Attributes:
        original_size: (H, W) of the input image.
        network_size: (H, W) of the image the model sees.
        scale_x, scale_y: resized width / original width, resized height / original height.
        left, top: network pixel of the resized image's top-left pixel edge (negative when cropped,
            positive when padded).
    """

    original_size: tuple[int, int]
    network_size: tuple[int, int]
    scale_x: float
    scale_y: float
    left: int
    top: int

    @property
    def resized_size(self) -> tuple[int, int]:
        """(H, W) of the whole image once scaled, before the crop or pad."""
        height, width = self.original_size
        return round(height * self.scale_y), round(width * self.scale_x)

    def seen_fraction(self) -> float:
        """Fraction of the view's pixels that land inside the network's image (1 when padded)."""
        resized_height, resized_width = self.resized_size
        height, width = self.network_size
        seen_width = min(self.left + resized_width, width) - max(self.left, 0)
        seen_height = min(self.top + resized_height, height) - max(self.top, 0)
        return max(seen_width, 0) * max(seen_height, 0) / (resized_width * resized_height)

    def affine(self) -> np.ndarray:
        """(3, 3) float64 matrix mapping homogeneous original pixels to network pixels."""
        return resize_intrinsics(np.eye(3), self.scale_x, self.scale_y, self.left, self.top)

    def to_network(self, uv: np.ndarray) -> np.ndarray:
        """(..., 2) original pixel coordinates -> (..., 2) network pixel coordinates."""
        return resized_coordinate(np.asarray(uv, dtype=np.float64), self._scale, self._offset)

    def to_original(self, uv: np.ndarray) -> np.ndarray:
        """(..., 2) network pixel coordinates -> (..., 2) original pixel coordinates."""
        return original_coordinate(np.asarray(uv, dtype=np.float64), self._scale, self._offset)

    def nearest_original_pixel(self, uv: np.ndarray) -> np.ndarray:
        """(..., 2) network pixel coordinates -> (..., 2) int64 (column, row) of the nearest original
        pixel centre, unclamped (outside the original image where the network sees padding)."""
        return nearest_original_pixel(np.asarray(uv, dtype=np.float64), self._scale, self._offset)

    def intrinsic_to_network(self, intrinsic: np.ndarray) -> np.ndarray:
        """(3, 3) intrinsics in original pixels -> (3, 3) float64 intrinsics in network pixels."""
        return resize_intrinsics(np.asarray(intrinsic, dtype=np.float64), *self._per_axis)

    def intrinsic_to_original(self, intrinsic: np.ndarray) -> np.ndarray:
        """(3, 3) intrinsics in network pixels -> (3, 3) float64 intrinsics in original pixels."""
        return original_intrinsics(np.asarray(intrinsic, dtype=np.float64), *self._per_axis)

    @property
    def _per_axis(self) -> tuple[float, float, int, int]:
        return self.scale_x, self.scale_y, self.left, self.top

    @property
    def _scale(self) -> np.ndarray:
        return np.array([self.scale_x, self.scale_y])

    @property
    def _offset(self) -> np.ndarray:
        return np.array([self.left, self.top])


def network_size(
    original_size: tuple[int, int], img_size: int, patch_size: int, mode: Literal["crop", "pad"]
) -> tuple[int, int]:
    """(H, W) the model sees for a first view of ``original_size`` (H, W)."""
    height, width = original_size
    if mode == "pad":
        return img_size, img_size
    if mode != "crop":
        raise InputError(f"unknown preprocessing mode {mode!r}; use 'crop' or 'pad'")
    if img_size % patch_size:
        raise InputError(f"img_size {img_size} is not a multiple of the patch size {patch_size}")
    scaled_height = height * img_size / width
    patches = min(img_size // patch_size, int(scaled_height // patch_size))
    if patches < 1:
        raise InputError(
            f"image of {width}x{height} is too wide for --mode crop (under {patch_size} rows at width "
            f"{img_size}); use --mode pad"
        )
    return patches * patch_size, img_size


def resize_record(
    original_size: tuple[int, int], target_size: tuple[int, int], mode: Literal["crop", "pad"]
) -> ResizeRecord:
    """The record that covers (crop) or fits inside (pad) ``target_size`` with one uniform scale."""
    height, width = original_size
    target_height, target_width = target_size
    choose = max if mode == "crop" else min
    scale = choose(target_width / width, target_height / height)
    resized_height = max(1, round(height * scale))
    resized_width = max(1, round(width * scale))
    if mode == "pad":
        resized_height, resized_width = min(resized_height, target_height), min(resized_width, target_width)
    left = (target_width - resized_width) // 2 if mode == "pad" else -((resized_width - target_width) // 2)
    top = (target_height - resized_height) // 2 if mode == "pad" else -((resized_height - target_height) // 2)
    return ResizeRecord(
        original_size=(height, width),
        network_size=(target_height, target_width),
        scale_x=resized_width / width,
        scale_y=resized_height / height,
        left=left,
        top=top,
    )


def preprocess_images(
    images: Sequence[np.ndarray],
    img_size: int,
    patch_size: int,
    mode: Literal["crop", "pad"] = "crop",
    pad_color: Literal["white", "black"] = "white",
) -> tuple[torch.Tensor, list[ResizeRecord]]:
    """S images (H_i, W_i, 3) float in [0, 1] -> ((S, 3, H, W) float32 tensor, S records)."""
    return preprocess_views(images, len(images), img_size, patch_size, mode, pad_color)


def preprocess_views(
    images: Iterable[np.ndarray],
    count: int,
    img_size: int,
    patch_size: int,
    mode: Literal["crop", "pad"] = "crop",
    pad_color: Literal["white", "black"] = "white",
    names: Sequence[str] | None = None,
    allocate: Callable[[tuple[int, ...]], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, list[ResizeRecord]]:
    """:func:`preprocess_images` of ``count`` images read one at a time (an
    :class:`iggt.io.images.ImageStream`): only one view at its own resolution is held.

    Args:
        images: the views, (H_i, W_i, 3) float in [0, 1]; the first fixes the network size.
        count: how many there are (the tensor is made once the first is read).
        names: S names for the error of a view with a side under one patch (checked as each is read).
        allocate: makes the (S, 3, H, W) float32 tensor that is filled view by view (torch.empty
            by default; a memory-mapped file keeps a long capture's input on disk).
    """
    if count < 1:
        raise InputError("no images to preprocess")
    if pad_color not in PAD_VALUES:
        raise InputError(f"unknown pad colour {pad_color!r}; use 'white' or 'black'")
    names = list(names) if names is not None else [f"image{i:04d}" for i in range(count)]
    tensor, records = None, []
    # Counted by hand: enumerate's (and zip's) result tuple holds each view while the next is decoded.
    for image in images:
        index = len(records)
        if index >= count:
            raise InputError(f"more than the {count} images announced; read the input again")
        check_visible_sizes([image.shape[:2]], [names[index]])
        if tensor is None:
            target = network_size(image.shape[:2], img_size, patch_size, mode)
            shape = (count, 3, *target)
            tensor = torch.empty(shape, dtype=torch.float32) if allocate is None else allocate(shape)
        records.append(resize_record(image.shape[:2], target, mode))
        tensor[index] = _resample_view(image, records[-1], PAD_VALUES[pad_color])
        del image  # else the loop holds this view while the next is decoded
    if len(records) != count:
        raise InputError(f"{len(records)} of the {count} images announced were read; read the input again")
    return tensor, records


def _resample_view(image: np.ndarray, record: ResizeRecord, pad_value: float) -> torch.Tensor:
    """(H, W, 3) -> (3, H_net, W_net): resize (antialiased, pixel-centre aligned) then crop or pad.

    Memory stays that of the input plus the output: an enlarged view (a strip scaled up to cover
    the network's image) is sampled at the pixels the network sees only.
    """
    height, width = record.original_size
    resized_height, resized_width = record.resized_size
    target_height, target_width = record.network_size
    canvas = torch.full((3, target_height, target_width), pad_value, dtype=torch.float32)
    # Intersection of the resized image (shifted by left, top) with the canvas.
    x0, y0 = max(record.left, 0), max(record.top, 0)
    x1 = min(record.left + resized_width, target_width)
    y1 = min(record.top + resized_height, target_height)
    rows, cols = (y0 - record.top, y1 - record.top), (x0 - record.left, x1 - record.left)
    chw = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)
    if resized_height >= height and resized_width >= width:
        # Antialiasing only acts when shrinking, so enlarging is bilinear and any part can be sampled alone.
        seen = _bilinear_part(chw, (resized_height, resized_width), rows, cols)
    else:  # shrunk: the resized image is no larger than the input
        resized = F.interpolate(
            chw[None], size=(resized_height, resized_width), mode="bilinear", align_corners=False, antialias=True
        )[0]
        seen = resized[:, rows[0] : rows[1], cols[0] : cols[1]]
    canvas[:, y0:y1, x0:x1] = seen.clamp(0, 1)
    return canvas


def _bilinear_part(
    chw: torch.Tensor, resized_size: tuple[int, int], rows: tuple[int, int], cols: tuple[int, int]
) -> torch.Tensor:
    """Rows [r0, r1) and columns [c0, c1) of (3, H, W) ``chw`` resized bilinearly to ``resized_size``
    (pixel centres aligned, edges clamped, as F.interpolate with align_corners=False)."""
    _, height, width = chw.shape
    row_taps = _taps(rows, height, resized_size[0])
    col_taps = _taps(cols, width, resized_size[1])
    # Gather along the axis whose intermediate result is smaller first.
    if (rows[1] - rows[0]) * width <= height * (cols[1] - cols[0]):
        return _blend(_blend(chw, 1, *row_taps), 2, *col_taps)
    return _blend(_blend(chw, 2, *col_taps), 1, *row_taps)


def _taps(span: tuple[int, int], size: int, resized: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(low index, high index, weight of high) of output pixels ``span`` of a ``size`` -> ``resized`` axis.

    The source coordinate is :func:`iggt.geometry.original_coordinate` written as F.interpolate
    computes it (times the inverse scale), so both paths give the same bits.
    """
    source = ((torch.arange(*span, dtype=torch.float64) + 0.5) * (size / resized) - 0.5).clamp(min=0)
    low = source.floor().long().clamp(max=size - 1)
    high = (low + 1).clamp(max=size - 1)
    return low, high, (source - low).float()


def _blend(values: torch.Tensor, dim: int, low: torch.Tensor, high: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    shape = [1, 1, 1]
    shape[dim] = -1
    weight = weight.view(shape)
    return values.index_select(dim, low) * (1 - weight) + values.index_select(dim, high) * weight


def check_visible_sizes(sizes: Sequence[tuple[int, int]], names: Sequence[str]) -> None:
    """InputError naming the first image (H, W) with a side under one patch: the network sees no
    detail of it, so whatever it predicts there is made up."""
    for (height, width), name in zip(sizes, names, strict=True):
        if min(height, width) < MIN_IMAGE_SIDE:
            raise InputError(
                f"image {name} is {width}x{height} pixels; the network needs at least {MIN_IMAGE_SIDE} px a side "
                "(one patch) to see anything: remove it or pass a larger image"
            )


def map_to_original(
    maps: np.ndarray, records: Sequence[ResizeRecord], nearest: bool = False, fill: float = 0.0
) -> list[np.ndarray]:
    """Resample per-view network maps to each view's original resolution.

    Args:
        maps: (S, H, W) or (S, H, W, C) at the network resolution.
        records: S records from :func:`preprocess_images`.
        nearest: nearest-neighbour sampling (for IDs and masks); bilinear otherwise.
        fill: value of original pixels the network never saw (cropped away).

    Returns:
        S arrays (H_i, W_i) or (H_i, W_i, C) with the dtype of ``maps``.
    """
    if len(maps) != len(records):
        raise InputError(f"{len(maps)} maps but {len(records)} resize records")
    grid_of = functools.cache(_sampling_grid)
    return [_map_view(view, grid_of(record), nearest, fill) for view, record in zip(maps, records, strict=True)]


class MappedViews(Sequence):
    """:func:`map_to_original`'s S arrays, each resampled when it is read: a long capture's maps
    at the original resolution are never all in memory (index, iterate, ``len``, ``np.stack``)."""

    def __init__(self, maps: np.ndarray, records: Sequence[ResizeRecord], nearest: bool = False, fill: float = 0.0):
        if len(maps) != len(records):
            raise InputError(f"{len(maps)} maps but {len(records)} resize records")
        self._maps, self._records, self._nearest, self._fill = maps, list(records), nearest, fill
        self._grid_of = functools.cache(_sampling_grid)

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        grid = self._grid_of(self._records[index])
        return _map_view(np.asarray(self._maps[index]), grid, self._nearest, self._fill)


@dataclass(frozen=True, eq=False)
class _SamplingGrid:
    """Where one view's original pixels sample the network's map: made once per distinct
    record (views of one capture share it), since building it costs some 20 times the sampling."""

    grid: torch.Tensor
    """(1, H_i, W_i, 2) float32 grid_sample coordinates (align_corners=False: -1 and 1 are the
    network image's outer pixel edges)."""
    inside: np.ndarray
    """(H_i, W_i) bool: the pixels the network saw (False where they were cropped away)."""
    network_size: tuple[int, int]


def _sampling_grid(record: ResizeRecord) -> _SamplingGrid:
    height, width = record.original_size
    net_height, net_width = record.network_size
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    uv = record.to_network(np.stack([cols, rows], -1))
    inside = (uv[..., 0] >= -0.5) & (uv[..., 0] <= net_width - 0.5) & (uv[..., 1] >= -0.5)
    inside &= uv[..., 1] <= net_height - 0.5
    grid = np.stack([(uv[..., 0] + 0.5) / net_width * 2 - 1, (uv[..., 1] + 0.5) / net_height * 2 - 1], -1)
    return _SamplingGrid(torch.from_numpy(grid.astype(np.float32))[None], inside, record.network_size)


def _map_view(view: np.ndarray, sampling: _SamplingGrid, nearest: bool, fill: float) -> np.ndarray:
    net_height, net_width = sampling.network_size
    channels = view.reshape(net_height, net_width, -1)
    # float32 holds instance IDs exactly (below 2**24) and keeps large photos' grids small.
    # writable: torch warns on read-only arrays (a stored result opened with mmap_mode="r")
    source = torch.from_numpy(np.require(channels, np.float32, ["C", "W"])).permute(2, 0, 1)[None]
    sampled = F.grid_sample(
        source, sampling.grid, mode="nearest" if nearest else "bilinear", padding_mode="border", align_corners=False
    )[0].permute(1, 2, 0)
    result = np.where(sampling.inside[..., None], sampled.numpy(), fill).astype(view.dtype)
    return result.reshape(sampling.inside.shape + view.shape[2:])
