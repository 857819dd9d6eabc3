"""Two policies for glibc's allocator: a long run's host memory kept flat, or a short run's kept.

glibc serves a large allocation with its own memory map and returns it to the system when freed,
but each such free raises the size from which it does so (the dynamic mmap threshold, up to
32 MiB). A windowed run frees window-sized temporaries again and again, so after the first few
they come from the heap, whose freed pages glibc keeps: the process's anonymous memory then grows
with the capture although nothing is alive (measured: `iggt reconstruct` with a store, 0.6 MB a
frame at 224 px; flat once the threshold is fixed, docs/long_captures.md). Fixing the threshold at
glibc's own starting value (128 KiB) keeps it there: :func:`fix_mmap_threshold`.

The other way round, a one-pass run in a process that ends after it (``iggt reconstruct``) loses
time to the same mapping: the forward's largest temporaries (the dense heads' maps, about 200 MB
each at 8 views of 224 x 224) are above the 32 MiB the dynamic threshold reaches, so each one is
mapped, faulted in page by page and unmapped again. On a 2-core CPU that is over a third of the
demo's forward (sys 2.0 of 4.9 s CPU time, 433 k page faults in the first pass; 3.58 -> 2.51 s wall
with :func:`keep_freed_memory`, and 2.64 -> 1.82 s for a second pass, which then faults nothing).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import platform

logger = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
"""mallopt's parameter number for the mmap threshold (glibc's malloc.h)."""
M_TRIM_THRESHOLD = -1
"""mallopt's parameter number for the size of free heap top kept instead of returned."""
MMAP_THRESHOLD_BYTES = 128 * 1024
"""glibc's starting threshold; setting it turns the dynamic raising off."""
KEPT_BLOCK_BYTES = 1 << 30
"""Blocks up to this size come from the heap under :func:`keep_freed_memory`."""
KEPT_TRIM_BYTES = (1 << 31) - 1
"""A trim threshold no heap of such a run reaches: freed memory stays with the process."""


def _mallopt(*settings: tuple[int, int]) -> bool:
    """Apply mallopt ``(parameter, value)`` settings in order; True when glibc took all of them."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return all(bool(libc.mallopt(parameter, ctypes.c_int(value))) for parameter, value in settings)
    except (OSError, AttributeError):
        return False


@functools.cache
def fix_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold for this process (once; a no-op elsewhere). True when set.

    Process-wide: blocks above 128 KiB are mapped and unmapped on each allocation and free, as
    before the first large free, which costs page faults but no lasting memory.
    """
    done = _mallopt((M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    logger.debug("glibc mmap threshold fixed at %d bytes: %s", MMAP_THRESHOLD_BYTES, done)
    return done


@functools.cache
def keep_freed_memory() -> bool:
    """Serve blocks up to 1 GiB from the heap and keep what is freed (once; a no-op off glibc).

    For a process that runs one reconstruction and ends: each large temporary is then faulted in
    once and reused, at the cost of holding the peak until exit. Never together with
    :func:`fix_mmap_threshold` (a run with a store), whose point is the opposite. True when set.
    """
    done = _mallopt((M_MMAP_THRESHOLD, KEPT_BLOCK_BYTES), (M_TRIM_THRESHOLD, KEPT_TRIM_BYTES))
    logger.debug("glibc keeps freed memory (blocks up to %d bytes from the heap): %s", KEPT_BLOCK_BYTES, done)
    return done
