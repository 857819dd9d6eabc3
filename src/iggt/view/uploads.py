"""Files uploaded from the page: checked by content, size and count, stored under safe names.

An upload arrives as one raw request body per file (the page sends ``fetch(url, {body: file})``;
no multipart parsing), with the browser's file name in the query string. Nothing of that name
reaches the file system but a sanitised stem: the stored file is ``<index>_<stem><suffix>`` where
the suffix comes from the sniffed content, so ``../../etc/passwd.png`` holding a JPEG is stored
as ``000_passwd.jpg`` inside the batch folder and nowhere else.
"""

from __future__ import annotations

import re
import secrets
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from iggt.errors import InputError

MAX_STEM_CHARS = 64
"""Longer names are cut (file systems limit a name to 255 bytes; ours stay far below)."""
BATCH_ID = re.compile(r"^[0-9a-f]{16}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

# (suffix, kind, test of the first bytes); the content decides, never the name.
_SIGNATURES = (
    (".png", "image", lambda b: b.startswith(b"\x89PNG\r\n\x1a\n")),
    (".jpg", "image", lambda b: b.startswith(b"\xff\xd8\xff")),
    (".webp", "image", lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP"),
    (".bmp", "image", lambda b: b.startswith(b"BM")),
    (".tif", "image", lambda b: b[:4] in (b"II*\x00", b"MM\x00*")),
    (".mp4", "video", lambda b: b[4:8] == b"ftyp"),
    (".mkv", "video", lambda b: b.startswith(b"\x1a\x45\xdf\xa3")),
    (".avi", "video", lambda b: b[:4] == b"RIFF" and b[8:12] == b"AVI "),
)
SNIFF_BYTES = 16


@dataclass(frozen=True)
class UploadLimits:
    """What one batch of uploads may hold."""

    max_file_bytes: int = 200 * 2**20
    """Largest single file (a phone video of a minute or two)."""
    max_files: int = 200
    """Most files in one batch (images of one scene)."""
    max_total_bytes: int = 1024 * 2**20
    """Most bytes in one batch."""


def sniff(head: bytes) -> tuple[str, str]:
    """(suffix, "image" or "video") of a file from its first bytes; InputError when it is neither."""
    for suffix, kind, matches in _SIGNATURES:
        if matches(head):
            return suffix, kind
    raise InputError(
        "the file is not an image (PNG, JPEG, WebP, BMP, TIFF) or a video (MP4/MOV, MKV/WebM, AVI) by its content"
    )


def safe_stem(name: str) -> str:
    """A file-name stem that is safe anywhere: no directories, no "..", no NUL or control characters,
    only ``[A-Za-z0-9._-]``, no leading dot, at most MAX_STEM_CHARS characters; "upload" when nothing is left."""
    base = re.split(r"[/\\]", name.replace("\x00", ""))[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    stem = _UNSAFE.sub("_", stem).strip("._-")
    stem = re.sub(r"\.{2,}", ".", stem)
    return stem[:MAX_STEM_CHARS].rstrip("._-") or "upload"


@dataclass
class UploadBatch:
    """The files of one upload, in ``folder``; added one at a time, each checked before it is stored."""

    batch_id: str
    folder: Path
    limits: UploadLimits
    files: list[Path] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    total_bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check_size(self, name: str, size: int | None) -> None:
        """Before the body is read: the declared size against the limits."""
        if size is None:
            raise InputError(f"upload {name!r} has no Content-Length; send the file as the request body")
        if size == 0:
            raise InputError(f"upload {name!r} is empty")
        if size > self.limits.max_file_bytes:
            raise InputError(
                f"upload {name!r} is {_size(size)}; the limit is {_size(self.limits.max_file_bytes)} per file "
                "(iggt serve --max-upload-mb)"
            )
        if len(self.files) >= self.limits.max_files:
            raise InputError(
                f"upload {name!r} would be file {len(self.files) + 1}; at most {self.limits.max_files} files per upload"
            )
        if self.total_bytes + size > self.limits.max_total_bytes:
            raise InputError(
                f"upload {name!r} would bring this upload past {_size(self.limits.max_total_bytes)} in all"
            )

    def add(self, name: str, data: bytes) -> Path:
        """Store one file's bytes (already size-checked) under a safe name; InputError when refused."""
        with self.lock:
            self.check_size(name, len(data))
            try:
                suffix, kind = sniff(data[:SNIFF_BYTES])
            except InputError as exc:
                raise InputError(f"upload {name!r}: {exc}") from None
            if (kind == "video" and self.files) or "video" in self.kinds:
                raise InputError(f"upload {name!r}: send one video alone, or images only, in one upload")
            path = self.folder / f"{len(self.files):03d}_{safe_stem(name)}{suffix}"
            path.write_bytes(data)
            self.files.append(path)
            self.kinds.append(kind)
            self.total_bytes += len(data)
            return path

    def inputs(self) -> list[str]:
        """What :func:`iggt.inference.reconstruct.reconstruct` reads: the stored files in upload order."""
        if not self.files:
            raise InputError("the upload holds no files; choose images or a video first")
        return [str(path) for path in self.files]


def _size(count: int) -> str:
    return f"{count / 2**20:.1f} MiB" if count >= 2**20 else f"{count} bytes"


class UploadStore:
    """Every batch of this server, each in its own folder under ``root``."""

    def __init__(self, root: Path, limits: UploadLimits) -> None:
        self.root, self.limits = root, limits
        self._batches: dict[str, UploadBatch] = {}
        self._lock = threading.Lock()

    def new_batch(self) -> UploadBatch:
        batch_id = secrets.token_hex(8)
        folder = self.root / batch_id
        folder.mkdir(parents=True)
        batch = UploadBatch(batch_id, folder, self.limits)
        with self._lock:
            self._batches[batch_id] = batch
        return batch

    def get(self, batch_id: str) -> UploadBatch:
        with self._lock:
            batch = self._batches.get(batch_id) if BATCH_ID.match(batch_id) else None
        if batch is None:
            raise InputError(f"no upload {batch_id!r} on this server; upload the files again")
        return batch
