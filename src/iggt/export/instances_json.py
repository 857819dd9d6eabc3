"""instances.json: the per-instance table (:meth:`Instances.to_json`) as strict JSON.

Non-finite numbers (the centroid and box of an instance without any finite 3D point) are
written as null (see :meth:`Instances.to_json`), because strict JSON readers reject NaN.
"""

from __future__ import annotations

from pathlib import Path

from iggt.export.options import ExportOptions
from iggt.export.selection import public_exporter
from iggt.structures import Instances, Predictions


def write_json(predictions: Predictions, instances: Instances, out_dir: Path, options: ExportOptions) -> list[Path]:
    """Write ``instances.json``; returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "instances.json"
    instances.write_json(path)
    return [path]


export_json = public_exporter(write_json)
