"""Predictions + Instances -> files that other tools open: NPZ, PLY, GLB, PNG masks, COLMAP, JSON.

One module per format, each ``export_<fmt>(predictions, instances, out_dir, options=None) -> list[Path]``;
:func:`export_all` writes several of them atomically.
"""

from iggt.export.bundle import DEFAULT_FORMATS, EXPORTERS, export_all
from iggt.export.colmap import export_colmap
from iggt.export.glb import export_glb
from iggt.export.instances_json import export_json
from iggt.export.masks import export_masks
from iggt.export.npz import export_npz
from iggt.export.options import ExportOptions
from iggt.export.ply import export_ply

__all__ = [
    "DEFAULT_FORMATS",
    "EXPORTERS",
    "ExportOptions",
    "export_all",
    "export_colmap",
    "export_glb",
    "export_json",
    "export_masks",
    "export_npz",
    "export_ply",
]
