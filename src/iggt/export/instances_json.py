"""instances.json: the per-instance table (:meth:`Instances.to_json`) as strict JSON.

Non-finite numbers (the centroid and box of an instance without any finite 3D point) are
written as null, because strict JSON readers reject NaN.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from iggt.export.options import ExportOptions
from iggt.export.selection import check_matching
from iggt.structures import Instances, Predictions


def export_json(
    predictions: Predictions, instances: Instances, out_dir: str | Path, options: ExportOptions | None = None
) -> list[Path]:
    """Write ``instances.json``; returns its path."""
    check_matching(predictions, instances)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "instances.json"
    path.write_text(json.dumps(_finite_or_null(instances.to_json()), indent=1, allow_nan=False))
    return [path]


def _finite_or_null(value):
    """The same JSON-like value with every NaN or infinity replaced by None."""
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite_or_null(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
