"""Host threads for the per-view and per-chunk work of the instance step.

NumPy releases the GIL inside its array loops, so independent views (or chunks of views) filtered
or summed on threads share the cores; the results are the same as one after the other.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

THREADS = min(8, os.cpu_count() or 1)
"""Most threads at once (each holds one view's or one chunk's temporaries)."""


def map_threads(function: Callable[[Item], Result], items: Iterable[Item]) -> list[Result]:
    """``[function(item) for item in items]``, in order, on up to :data:`THREADS` threads."""
    items = list(items)
    if len(items) <= 1 or THREADS == 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(min(THREADS, len(items))) as pool:
        return list(pool.map(function, items))
