"""Writing ``.npz`` archives with fast deflate on every core: what ``np.load`` reads.

numpy's ``savez_compressed`` deflates at zlib's default level 6 on one thread. The arrays are mostly
float32 network outputs, which deflate poorly at any level (to 83-93 % of their size): level 1 wrote
the example scene's predictions.npz in 0.75 s instead of 1.2 s (2 busy CPU cores) at 1.4 % more bytes,
and export time is what a user waits for after every reconstruction. At 100 frames of 336 x 518 the
archive holds 1.2 GB of float32, 33 s of deflate on one thread (benchmarks/export_costs.py); each
member is therefore one deflate stream made on ``threads`` threads
(:mod:`iggt.structures.parallel_deflate`) and written into the zip as it comes, with the zip
records written here (``zipfile`` cannot take bytes compressed elsewhere). The archive is a plain
zip of ``<key>.npy`` members, deflated (or stored), with zip64 sizes in every local header (as
``zipfile``'s ``force_zip64``), so members above 4 GiB need no special case. Member times are the
zip epoch (1980-01-01), so the same arrays always give the same bytes.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from iggt.structures.parallel_deflate import CHUNK_BYTES, crc32_combine, deflate_chunk, ordered_map

COMPRESS_LEVEL = 1

_LOCAL = struct.Struct("<IHHHHHIIIHH")  # signature, version, flags, method, time, date, crc, sizes, name, extra
_LOCAL_ZIP64 = struct.Struct("<HHQQ")  # tag 1, 16 bytes: uncompressed, compressed size
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_END64 = struct.Struct("<IQHHIIQQQQ")
_END64_LOCATOR = struct.Struct("<IIQI")
_STORED, _DEFLATED, _ZIP64_VERSION, _MADE_ON_UNIX = 0, 8, 45, 3 << 8
_DOS_EPOCH_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01, 00:00:00 (time field 0)
_LIMIT32, _LIMIT16 = 0xFFFFFFFF, 0xFFFF
_MEMBER_ATTRIBUTES = 0o600 << 16  # rw------- as zipfile gives the members it writes


@dataclass
class _Member:
    name: bytes
    offset: int
    method: int
    crc: int = 0
    size: int = 0
    compressed: int = 0


def default_threads() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def save_npz(
    path: str | Path, arrays: Mapping[str, np.ndarray], threads: int | None = None, deflate_floats: bool = True
) -> None:
    """Write ``arrays`` to ``path`` as an ``.npz`` (one ``<key>.npy`` member per array), deflating on
    ``threads`` threads (default: every CPU this process may use); the bytes do not depend on it.
    With ``deflate_floats`` False, floating-point arrays are stored as they are (no compression
    work, larger files) and the others still deflated.

    Raises ValueError for an object array (as ``np.savez`` does with ``allow_pickle=False``).
    """
    arrays = {key: np.asanyarray(value) for key, value in arrays.items()}
    for key, value in arrays.items():
        if value.dtype.hasobject:
            raise ValueError(f"Object arrays cannot be saved when allow_pickle=False (array {key!r})")
    methods = {
        key: _STORED if not deflate_floats and np.issubdtype(value.dtype, np.floating) else _DEFLATED
        for key, value in arrays.items()
    }
    threads = max(1, threads or default_threads())
    with ThreadPoolExecutor(threads, thread_name_prefix="npz") if threads > 1 else nullcontext() as pool:
        jobs = (job for key, value in arrays.items() for job in _member_jobs(value, methods[key]))
        results = ordered_map(_encode, jobs, pool, in_flight=2 * threads)
        with open(path, "wb") as file:
            members = [_write_member(file, _Member(f"{key}.npy".encode(), file.tell(), methods[key]), results)
                       for key in arrays]  # fmt: skip
            _write_directory(file, members)


def _member_jobs(array: np.ndarray, method: int) -> Iterator[tuple]:
    """The jobs (data, previous data, last, method) of one ``.npy`` member: its header, then its data
    in CHUNK_BYTES pieces, in C order; only the member's final job has ``last`` set."""
    previous, pending = b"", _npy_header(array)
    for piece in _pieces(array):
        yield pending, previous, False, method
        previous, pending = pending, piece
    yield pending, previous, True, method


def _encode(data: memoryview | bytes, previous: memoryview | bytes, last: bool, method: int) -> tuple:
    """A member's bytes for ``data`` (deflated, or ``data`` itself when stored) and its CRC-32."""
    if method == _STORED:
        return data, zlib.crc32(data)
    return deflate_chunk(data, previous, last, COMPRESS_LEVEL)


def _npy_header(array: np.ndarray) -> bytes:
    """The ``.npy`` header ``np.save`` would write for ``array`` (format 1.0, or 2.0 if it is too long),
    stating C order: the data goes out in C order."""
    fields = {**np.lib.format.header_data_from_array_1_0(array), "fortran_order": False}
    buffer = io.BytesIO()
    try:
        np.lib.format.write_array_header_1_0(buffer, fields)
    except ValueError:
        buffer = io.BytesIO()
        np.lib.format.write_array_header_2_0(buffer, fields)
    return buffer.getvalue()


def _pieces(array: np.ndarray) -> Iterator[memoryview]:
    """``array``'s bytes in C order, about CHUNK_BYTES at a time: views of a C-contiguous array;
    otherwise a few rows copied at a time, so a strided array is never copied whole."""
    if array.flags.c_contiguous:
        data = memoryview(array.reshape(-1).view(np.uint8))
        for start in range(0, len(data), CHUNK_BYTES):
            yield data[start : start + CHUNK_BYTES]
        return
    rows = max(1, CHUNK_BYTES // max(array[0].nbytes, 1))  # not contiguous, so not 0-d
    for start in range(0, len(array), rows):
        yield memoryview(np.ascontiguousarray(array[start : start + rows]).reshape(-1).view(np.uint8))


def _write_member(file: BinaryIO, member: _Member, results: Iterator[tuple[tuple, tuple]]) -> _Member:
    """Write ``member``'s local header and its encoded chunks, taken from ``results`` up to the
    member's last, then go back and fill in its CRC and sizes."""
    file.write(_local_header(member))
    last = False
    while not last:
        (data, _, last, _), (body, crc) = next(results)
        file.write(body)
        member.crc = crc32_combine(member.crc, crc, len(data))
        member.size += len(data)
        member.compressed += len(body)
    end = file.tell()
    file.seek(member.offset)
    file.write(_local_header(member))
    file.seek(end)
    return member


def _local_header(member: _Member) -> bytes:
    fixed = _LOCAL.pack(
        0x04034B50, _ZIP64_VERSION, 0, member.method, 0, _DOS_EPOCH_DATE, member.crc,
        _LIMIT32, _LIMIT32, len(member.name), _LOCAL_ZIP64.size,
    )  # fmt: skip
    return fixed + member.name + _LOCAL_ZIP64.pack(1, 16, member.size, member.compressed)


def _write_directory(file: BinaryIO, members: list[_Member]) -> None:
    """The central directory and its end records; zip64 fields only where a value overflows 32 bits
    (as zipfile writes them), listed in the order the format fixes: sizes, then offset."""
    start = file.tell()
    for member in members:
        values = (member.size, member.compressed, member.offset)
        large = [value for value in values if value > _LIMIT32]
        extra = struct.pack(f"<HH{len(large)}Q", 1, 8 * len(large), *large) if large else b""
        size, compressed, offset = (min(value, _LIMIT32) for value in values)
        record = _CENTRAL.pack(
            0x02014B50, _MADE_ON_UNIX | _ZIP64_VERSION, _ZIP64_VERSION, 0, member.method, 0, _DOS_EPOCH_DATE,
            member.crc, compressed, size, len(member.name), len(extra), 0, 0, 0, _MEMBER_ATTRIBUTES, offset,
        )  # fmt: skip
        file.write(record + member.name + extra)
    end = file.tell()
    size, count = end - start, len(members)
    if count > _LIMIT16 or size > _LIMIT32 or start > _LIMIT32:
        version = _MADE_ON_UNIX | _ZIP64_VERSION
        file.write(_END64.pack(0x06064B50, 44, version, _ZIP64_VERSION, 0, 0, count, count, size, start))
        file.write(_END64_LOCATOR.pack(0x07064B50, 0, end, 1))
    entries = min(count, _LIMIT16)
    file.write(_END.pack(0x06054B50, 0, 0, entries, entries, min(size, _LIMIT32), min(start, _LIMIT32), 0))
