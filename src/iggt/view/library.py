"""The results a server shows: export folders by ID, loaded when asked for and kept with their display
buffers, the few most recently used only (a folder of many large results must not fill the memory).

Every answer about a result (scene, points, labels, tracks, queries, downloads) starts from its
:class:`iggt.tasks.result.SavedResult`; the network is never loaded here.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from iggt.errors import InputError
from iggt.export.npz import PREDICTIONS_FILENAME
from iggt.export.selection import to_uint8
from iggt.tasks.result import SavedResult, load_result
from iggt.view.scene_buffers import DEFAULT_MAX_DISPLAY_POINTS, SceneDisplay, build_display

RESULT_ID = re.compile(r"^[0-9a-f]{12}$")
MAX_LOADED_RESULTS = 3
"""Results kept in memory with their display buffers; older ones are read again when asked for."""


@dataclass
class LibraryEntry:
    result_id: str
    folder: Path
    origin: str
    """"opened" (named on the command line or found in the results folder) or "run" (made from the page)."""
    num_views: int
    num_instances: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    result: SavedResult | None = None
    display: SceneDisplay | None = None


class ResultLibrary:
    """Export folders by a short ID derived from their path (the same folder keeps its ID)."""

    def __init__(self, max_display_points: int = DEFAULT_MAX_DISPLAY_POINTS) -> None:
        self.max_display_points = max_display_points
        self._entries: dict[str, LibraryEntry] = {}
        self._loaded: OrderedDict[str, None] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()

    def add(self, folder: Path, origin: str = "opened", prepare: bool = True) -> str:
        """Register an export folder (checked by reading it now) and return its ID; ``prepare`` builds
        its display buffers in the background, so the page finds them ready."""
        folder = Path(folder).resolve()
        result_id = hashlib.sha256(str(folder).encode()).hexdigest()[:12]
        result = load_result(folder)
        entry = LibraryEntry(result_id, folder, origin, result.num_views, result.instances.num_instances)
        with self._lock:
            known = result_id in self._entries
            self._entries.setdefault(result_id, entry)
        if not known:
            with entry.lock:
                entry.result = result
            self._touch(result_id)
            if prepare:
                threading.Thread(target=self._prepare, args=(result_id,), daemon=True).start()
        return result_id

    def add_children(self, root: Path) -> list[str]:
        """Register every subfolder of ``root`` that holds a reconstruction; unreadable ones are skipped."""
        ids = []
        for folder in sorted(p for p in root.iterdir() if (p / PREDICTIONS_FILENAME).is_file()):
            try:
                ids.append(self.add(folder, prepare=False))
            except InputError:
                continue
        return ids

    def listing(self) -> list[dict]:
        with self._lock:
            entries = list(self._entries.values())
        return [
            {
                "id": e.result_id,
                "name": e.folder.name,
                "origin": e.origin,
                "views": e.num_views,
                "instances": e.num_instances,
            }
            for e in entries
        ]

    def entry(self, result_id: str) -> LibraryEntry:
        with self._lock:
            entry = self._entries.get(result_id) if RESULT_ID.match(result_id) else None
        if entry is None:
            raise InputError(f"no result {result_id!r} on this server; pick one from the list")
        return entry

    def result(self, result_id: str) -> SavedResult:
        """The saved result, read again if it was dropped from memory."""
        entry = self.entry(result_id)
        with entry.lock:
            if entry.result is None:
                entry.result = load_result(entry.folder)
            result = entry.result
        self._touch(result_id)
        return result

    def display(self, result_id: str) -> SceneDisplay:
        """The decimated display buffers (with the labels of `iggt segment`, if any), built on first use."""
        from iggt.tasks.open_vocab_output import saved_labels

        result = self.result(result_id)
        entry = self.entry(result_id)
        with entry.lock:
            if entry.display is None:
                entry.result = result  # kept together: dropped together (_touch)
                entry.display = build_display(result, self.max_display_points, saved_labels(result))
            return entry.display

    def _prepare(self, result_id: str) -> None:
        try:
            self.display(result_id)
        except Exception:  # the page's own request builds it again and reports the error
            return

    def _touch(self, result_id: str) -> None:
        """Mark a result as just used and drop the least recently used beyond MAX_LOADED_RESULTS."""
        with self._lock:
            self._loaded[result_id] = None
            self._loaded.move_to_end(result_id)
            dropped = []
            while len(self._loaded) > MAX_LOADED_RESULTS:
                dropped.append(self._entries[self._loaded.popitem(last=False)[0]])
        for entry in dropped:
            with entry.lock:
                entry.result, entry.display = None, None


def labels_buffer(result: SavedResult) -> bytes:
    """(S, H, W) instance IDs as little-endian uint32, view after view (the page draws the highlights)."""
    return np.ascontiguousarray(result.instances.labels, dtype="<u4").tobytes()


def images_buffer(result: SavedResult) -> bytes:
    """(S, H, W, 3) input views as uint8 RGB, view after view (one request instead of S image files)."""
    return to_uint8(result.predictions.images).tobytes()


def exports(result: SavedResult) -> list[dict]:
    """The downloadable entries of an export folder: its files and (zipped) folders, by name."""
    rows = []
    for path in sorted(result.folder.iterdir()):
        if path.is_file():
            rows.append({"name": path.name, "kind": "file", "bytes": path.stat().st_size})
        elif path.is_dir():
            size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            rows.append({"name": path.name, "kind": "folder", "bytes": size})
    return rows


def export_payload(result: SavedResult, name: str) -> tuple[str, bytes]:
    """(download file name, bytes) of one listed entry; a folder comes as a zip of its files."""
    listed = {row["name"]: row["kind"] for row in exports(result)}
    if name not in listed:
        raise InputError(f"{result.folder.name} has no export {name!r}; choose one of {sorted(listed)}")
    path = result.folder / name
    if listed[name] == "file":
        return name, path.read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            archive.write(file, str(file.relative_to(result.folder)))
    return f"{name}.zip", buffer.getvalue()
