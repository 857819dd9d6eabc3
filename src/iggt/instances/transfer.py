"""Host arrays of a few views (memory maps of a long capture included) -> tensors on a device."""

from __future__ import annotations

import numpy as np
import torch


def to_device(array: np.ndarray, device: torch.device, dtype: np.dtype | None = None) -> torch.Tensor:
    """``array`` (e.g. ``labels[views]`` of a memory map) in ``dtype`` (None: its own) on ``device``.

    A read-only memory map (``np.load(mmap_mode="r")``) is copied to host memory first: torch
    would otherwise warn that its tensor could write to the map. Other arrays are read in place.
    """
    host = np.ascontiguousarray(array, dtype=dtype)
    if not host.flags.writeable:
        host = host.copy()
    return torch.from_numpy(host).to(device)
