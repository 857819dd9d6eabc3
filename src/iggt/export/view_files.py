"""The exporters' per-view files: written on several threads, RGB PNGs at a fast deflate level.

Encoding a PNG (Pillow) and deflating (zlib) release the GIL, so the views' files of one format are
written side by side; each view's file depends on that view alone, so the bytes do not depend on
the thread count or on the order in which the views finish.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

from iggt.io.output_dir import interrupts_deferred
from iggt.structures.npz_archive import default_threads

Result = TypeVar("Result")

RGB_PNG_LEVEL = 1
"""zlib level of the RGB PNGs (overlays, COLMAP images). Photos and their tints deflate poorly: a
336 x 518 view took 17 ms at level 1 and 27-32 ms at Pillow's default 6, for 10 % more bytes."""


def save_rgb_png(image: np.ndarray | Image.Image, path: Path) -> Path:
    """(H, W, 3) uint8 RGB (or a PIL image) -> a PNG at ``path`` deflated at :data:`RGB_PNG_LEVEL`."""
    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    picture.save(path, format="PNG", compress_level=RGB_PNG_LEVEL)
    return path


def map_views(function: Callable[[int], Result], count: int, threads: int | None = None) -> list[Result]:
    """``[function(view) for view in range(count)]`` on ``threads`` threads (None: every CPU this
    process may use). The first failure, by view, is raised once the views already started have
    ended; views not yet started are not run."""
    threads = min(max(1, threads or default_threads()), count)
    if threads <= 1:
        return [function(view) for view in range(count)]
    with ThreadPoolExecutor(threads, thread_name_prefix="export-view") as pool:
        with interrupts_deferred():  # the pool must know every thread it starts: see interrupts_deferred
            futures = [pool.submit(function, view) for view in range(count)]
        try:
            return [future.result() for future in futures]
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
