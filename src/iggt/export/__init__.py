"""Predictions + Instances -> files that other tools open: NPZ, PLY, GLB, PNG masks, COLMAP, JSON.

One module per format, each ``export_<fmt>(predictions, instances, out_dir, options=None) -> list[Path]``
(checking its inputs; see :mod:`iggt.export.selection`); :func:`export_all` checks once and writes
several of them atomically, plus the files of a reconstruction (:mod:`iggt.export.reconstruction`).
"""

from iggt.export.bundle import DEFAULT_FORMATS, EXPORTERS, check_formats, export_all
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
    "check_formats",
    "export_all",
    "export_colmap",
    "export_glb",
    "export_json",
    "export_masks",
    "export_npz",
    "export_ply",
]
