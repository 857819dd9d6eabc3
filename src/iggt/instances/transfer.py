"""Host arrays of a few views (memory maps of a long capture included) -> tensors on a device, and
which device the instance step's torch paths take."""

from __future__ import annotations

import numpy as np
import torch

from iggt.device import resolve_device


def to_device(array: np.ndarray, device: torch.device, dtype: np.dtype | None = None) -> torch.Tensor:
    """``array`` (e.g. ``labels[views]`` of a memory map) in ``dtype`` (None: its own) on ``device``.

    A read-only memory map (``np.load(mmap_mode="r")``) is copied to host memory first: torch
    would otherwise warn that its tensor could write to the map. Other arrays are read in place.
    """
    host = np.ascontiguousarray(array, dtype=dtype)
    if not host.flags.writeable:
        host = host.copy()
    return torch.from_numpy(host).to(device)


def torch_path_device(spec: str) -> torch.device | None:
    """Where the instance step's torch paths run (the spanning tree, the majority filter, the
    lifting): ``spec`` resolved as the clustering's assignment resolves it ("auto": the GPU when
    one is visible), when that is a GPU; None keeps them on their host paths, the ones tuned for
    the CPU (hdbscan's kd-tree Borůvka is 10x faster than the dense tree on 2 cores; torch takes
    3x as long to lift and 6x as long to filter 12 views of 336 x 518)."""
    device = resolve_device(spec)
    return device if device.type == "cuda" else None
