"""Strict JSON for the project's files: NaN and infinities, which JSON lacks, are written as null."""

from __future__ import annotations

import json
import math
from pathlib import Path


def finite_or_none(value):
    """The same JSON-like value (dicts, lists, numbers, strings) with non-finite floats replaced by None."""
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_strict_json(path: str | Path, value) -> Path:
    """Write ``value`` as indented strict JSON; returns the path."""
    path = Path(path)
    path.write_text(json.dumps(finite_or_none(value), indent=1, allow_nan=False))
    return path
