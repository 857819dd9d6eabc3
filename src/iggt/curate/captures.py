"""One entry point for the capture layouts curation reads: the scene format, ScanNet / ScanNet++
exports (:mod:`iggt.eval.scannet_reader`) and InsScene-15K (:mod:`iggt.curate.insscene_reader`)."""

from __future__ import annotations

from pathlib import Path

from iggt.curate.insscene_reader import is_insscene_scene, read_insscene_scene
from iggt.errors import InputError
from iggt.eval.scannet_reader import is_scannet_scene, read_scannet_scene
from iggt.io.scene_format import MANIFEST, read_scene
from iggt.structures.scene import Scene

LAYOUTS = ("scene", "scannet", "insscene")


def detect_layout(folder: Path) -> str:
    """Which of LAYOUTS ``folder`` is in; InputError naming what each layout needs otherwise."""
    folder = Path(folder)
    if (folder / MANIFEST).is_file():
        return "scene"
    if is_scannet_scene(folder):
        return "scannet"
    if is_insscene_scene(folder):
        return "insscene"
    raise InputError(
        f"{folder} is not a capture: expected scene.json (scene format), color/ + pose/ (ScanNet), or "
        "images/ + depth/ + cam/ (InsScene-15K)"
    )


def read_capture(folder: str | Path, layout: str | None = None, depth_scale: float = 1000.0) -> Scene:
    """An RGB-D capture with poses as a Scene (its instance maps, if any, are the layout's own)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"capture {folder} is not a folder")
    layout = layout or detect_layout(folder)
    if layout == "scene":
        return read_scene(folder)
    if layout == "scannet":
        return read_scannet_scene(folder, depth_scale=depth_scale)
    if layout == "insscene":
        return read_insscene_scene(folder, depth_scale=depth_scale)
    raise InputError(f"unknown capture layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
