"""Renames that never lose a folder: one that refuses to replace its target, and an atomic swap.

Both use Linux ``renameat2`` (glibc >= 2.28); where it or its flag is missing they fall back
(a checked rename; no swap, and the caller does two renames).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from pathlib import Path

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_UNSUPPORTED = (errno.ENOSYS, errno.EINVAL)  # no such call, or the file system lacks the flag


def _load_renameat2():
    try:
        function = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_renameat2 = _load_renameat2()


def _call_renameat2(source: Path, target: Path, flags: int) -> int:
    """0 on success, else the errno (ENOSYS when renameat2 is unavailable)."""
    if _renameat2 is None:
        return errno.ENOSYS
    if _renameat2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) == 0:
        return 0
    return ctypes.get_errno()


def rename_no_replace(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``; FileExistsError if ``target`` exists (even an empty folder)."""
    code = _call_renameat2(source, target, _RENAME_NOREPLACE)
    if code == 0:
        return
    if code == errno.EEXIST:
        raise FileExistsError(code, os.strerror(code), str(target))
    if code not in _UNSUPPORTED:
        raise OSError(code, os.strerror(code), str(source), None, str(target))
    # A small window remains between this check and the rename; os.rename still refuses a
    # non-empty folder as target, so a result is never replaced.
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    os.rename(source, target)


def exchange(first: Path, second: Path) -> bool:
    """Swap two existing paths in one atomic step; False (nothing done) where unsupported."""
    code = _call_renameat2(first, second, _RENAME_EXCHANGE)
    if code in _UNSUPPORTED:
        return False
    if code != 0:
        raise OSError(code, os.strerror(code), str(first), None, str(second))
    return True
