"""Class names for ScanNet-format label maps: ScanNet's own label table, or a plain list of names.

ScanNet's ``label-filt/`` PNGs hold the ``id`` column of ``scannetv2-labels.combined.tsv`` (one
row per raw annotation category, ~600 of them). Read with :func:`read_scannet_label_table`, those
IDs are mapped to the table's NYU40 classes (``nyu40id`` -> ``nyu40class``), the class set that
ScanNet's semantic evaluations use; rows with an empty or 0 ``nyu40id`` stay unlabelled.

A plain list (:func:`read_class_names`), one ``<id> <name>`` per line, names the IDs of the label
maps as they are (names may hold spaces; blank lines and lines starting with ``#`` are skipped).

Either way, IDs of the label maps that the table does not name become 0 (unlabelled, not evaluated).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iggt.errors import SceneFormatError

SCANNET_LABEL_TABLE = "scannetv2-labels.combined.tsv"
"""The file name of ScanNet's label table, looked for at the root of ``iggt eval --data``."""
TABLE_COLUMNS = ("id", "nyu40id", "nyu40class")


@dataclass(frozen=True)
class ClassTable:
    """How the IDs of a dataset's label maps become evaluated classes, and their names."""

    class_of: dict[int, int]
    """Label-map ID -> class ID (> 0); IDs not in it are unlabelled."""
    names: dict[int, str]
    """Class ID -> name, for every class ID in ``class_of``."""
    source: str
    """The file it was read from (its name, for reports)."""

    def apply(self, label_ids: np.ndarray) -> np.ndarray:
        """(...) label-map IDs -> (...) int32 class IDs, 0 where the table names none."""
        ids, inverse = np.unique(label_ids, return_inverse=True)
        lookup = np.array([self.class_of.get(int(i), 0) for i in ids], dtype=np.int32)
        return lookup[inverse].reshape(np.shape(label_ids))


def _integer(text: str, where: str, column: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise SceneFormatError(f"{where}: {column} {text.strip()!r} is not an integer") from None


def read_scannet_label_table(path: Path) -> ClassTable:
    """ScanNet's ``scannetv2-labels.combined.tsv``: label-map ``id`` -> NYU40 class (module docstring)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle, delimiter="\t"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SceneFormatError(f"cannot read the ScanNet label table {path}: {exc}") from exc
    header = rows[0] if rows else []
    missing = [column for column in TABLE_COLUMNS if column not in header]
    if missing:
        raise SceneFormatError(
            f"{path} is not ScanNet's label table: its header has no column {', '.join(missing)} "
            f"(expected the tab-separated {SCANNET_LABEL_TABLE} with {', '.join(TABLE_COLUMNS)})"
        )
    index = {column: header.index(column) for column in TABLE_COLUMNS}
    class_of: dict[int, int] = {}
    names: dict[int, str] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path} line {line}"
        if len(row) <= max(index.values()):
            raise SceneFormatError(f"{where}: {len(row)} tab-separated fields, the header has {len(header)}")
        label_id = _integer(row[index["id"]], where, "id")
        if label_id in class_of:
            raise SceneFormatError(f"{where}: id {label_id} is listed twice")
        nyu40 = row[index["nyu40id"]].strip()
        class_id = _integer(nyu40, where, "nyu40id") if nyu40 else 0
        if class_id <= 0:
            continue  # no NYU40 class: unlabelled
        name = row[index["nyu40class"]].strip()
        if names.setdefault(class_id, name) != name:
            raise SceneFormatError(f"{where}: nyu40id {class_id} is named {name!r} here but {names[class_id]!r} above")
        class_of[label_id] = class_id
    if not class_of:
        raise SceneFormatError(f"{path} maps no id to a NYU40 class; nothing could be evaluated")
    return ClassTable(class_of, names, path.name)


def read_class_names(path: Path) -> ClassTable:
    """A class-name file, one ``<id> <name>`` per line: the label maps' IDs named as they are."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SceneFormatError(f"cannot read the class names {path}: {exc}") from exc
    names: dict[int, str] = {}
    for number, text in enumerate(lines, start=1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        fields = text.split(maxsplit=1)
        where = f"{path} line {number}"
        if len(fields) != 2:
            raise SceneFormatError(f"{where}: {text.strip()!r} is not '<id> <name>'")
        class_id = _integer(fields[0], where, "id")
        if class_id <= 0:
            raise SceneFormatError(f"{where}: id {class_id} must be at least 1 (0 is unlabelled)")
        if class_id in names:
            raise SceneFormatError(f"{where}: id {class_id} is listed twice")
        names[class_id] = fields[1].strip()
    if not names:
        raise SceneFormatError(f"{path} names no class; write one '<id> <name>' per line")
    return ClassTable({class_id: class_id for class_id in names}, names, path.name)
