"""One deflate stream made on several threads: how a large ``.npz`` member is compressed in parallel.

The bytes are cut into fixed-size chunks; each chunk is deflated on its own (zlib releases the GIL),
primed with the last 32 KiB of the chunk before it as its dictionary, and ends with a sync flush, so
the compressed chunks, concatenated in order, are one valid raw deflate stream, only a few bytes
per chunk longer than a serial one (the way pigz makes gzip files). The chunking does not depend on
the thread count, so the stream's bytes do not either. Each chunk's CRC-32 is computed with it and
the CRCs are combined in order (:func:`crc32_combine`), so no thread reads all the bytes again.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from functools import lru_cache

CHUNK_BYTES = 1 << 21
"""Uncompressed bytes per chunk: small enough to keep 16 threads busy on a 10 MB array, large enough
that the per-chunk cost (a Python call, a 5-byte flush marker) is nothing."""
WINDOW_BYTES = 1 << 15
"""Deflate's window: the most of the previous chunk a back-reference can reach."""


def deflate_chunk(data: memoryview | bytes, previous: memoryview | bytes, last: bool, level: int) -> tuple[bytes, int]:
    """Raw deflate of ``data`` (primed with the tail of ``previous``) and the CRC-32 of ``data``.

    The output ends byte-aligned with a sync flush, or with the final block when ``last``.
    """
    tail = bytes(previous[-WINDOW_BYTES:])
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15, **({"zdict": tail} if tail else {}))
    body = compressor.compress(data) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)
    return body, zlib.crc32(data)


def ordered_map(function: Callable, jobs: Iterable[tuple], pool: Executor | None, in_flight: int) -> Iterator[tuple]:
    """``(job, function(*job))`` for each job, in order, at most ``in_flight`` jobs submitted ahead
    on ``pool`` (run in this thread when None), so the results waiting to be written stay bounded."""
    if pool is None:
        for job in jobs:
            yield job, function(*job)
        return
    waiting: deque = deque()
    for job in jobs:
        waiting.append((job, pool.submit(function, *job)))
        if len(waiting) >= in_flight:
            done, future = waiting.popleft()
            yield done, future.result()
    while waiting:
        done, future = waiting.popleft()
        yield done, future.result()


def crc32_combine(first: int, second: int, second_length: int) -> int:
    """CRC-32 of ``a + b`` from ``crc32(a)``, ``crc32(b)`` and ``len(b)`` (zlib's crc32_combine)."""
    return _apply(_zeros_operator(second_length), first) ^ second


@lru_cache(maxsize=8)  # every chunk but a member's last has the same length: one operator serves them all
def _zeros_operator(length: int) -> tuple[int, ...]:
    """The GF(2) 32 x 32 matrix (one int per column) that runs a CRC register through ``length`` zero bytes."""
    bit = (0xEDB88320, *(1 << row for row in range(31)))  # one zero bit: shift right, fold in the polynomial
    power = bit
    for _ in range(3):  # 1 bit -> 2 -> 4 -> 8: one zero byte
        power = _compose(power, power)
    result = tuple(1 << row for row in range(32))
    while length:
        if length & 1:
            result = _compose(power, result)
        power = _compose(power, power)
        length >>= 1
    return result


def _compose(outer: tuple[int, ...], inner: tuple[int, ...]) -> tuple[int, ...]:
    """The matrix of applying ``inner`` then ``outer``."""
    return tuple(_apply(outer, column) for column in inner)


def _apply(matrix: tuple[int, ...], vector: int) -> int:
    total, row = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total
