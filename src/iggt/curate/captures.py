"""One entry point for the capture layouts curation reads: the scene format, ScanNet-style exports
(:mod:`iggt.eval.scannet_reader`), native ScanNet++ scenes (:mod:`iggt.curate.scannetpp_reader`) and
InsScene-15K (:mod:`iggt.curate.insscene_reader`)."""

from __future__ import annotations

from pathlib import Path

from iggt.curate.insscene_reader import is_insscene_scene, read_insscene_scene
from iggt.curate.scannetpp_reader import is_scannetpp_scene, read_scannetpp_scene
from iggt.errors import InputError
from iggt.eval.scannet_reader import is_scannet_scene, read_scannet_scene
from iggt.io.scene_format import MANIFEST, read_scene
from iggt.structures.scene import Scene

LAYOUTS = ("scene", "scannet", "scannetpp", "scannetpp-iphone", "scannetpp-dslr", "insscene")
"""``scannetpp`` reads the iPhone frames when they are decoded, else the DSLR's."""


def detect_layout(folder: Path) -> str:
    """Which of LAYOUTS ``folder`` is in; InputError naming what each layout needs otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"capture {folder} is not a folder")
    if (folder / MANIFEST).is_file():
        return "scene"
    if is_scannetpp_scene(folder):
        return "scannetpp"
    if is_scannet_scene(folder):
        return "scannet"
    if is_insscene_scene(folder):
        return "insscene"
    raise InputError(
        f"{folder} is not a capture: expected scene.json (scene format), color/ + pose/ (ScanNet), "
        "scans/ + iphone/ or dslr/ (ScanNet++), or images/ + depth/ + cam/ (InsScene-15K)"
    )


def read_capture(
    folder: str | Path, layout: str | None = None, depth_scale: float = 1000.0, max_frames: int | None = None
) -> Scene:
    """An RGB-D capture with poses as a Scene (its instance maps, if any, are the layout's own).

    ``max_frames`` (ScanNet and ScanNet++ only, whose captures run to thousands of frames) reads at
    most that many, spread evenly.
    """
    folder = Path(folder)
    layout = layout or detect_layout(folder)
    if not folder.is_dir():
        raise InputError(f"capture {folder} is not a folder")
    if max_frames is not None and not layout.startswith("scannet"):
        raise InputError(f"--max-frames applies to ScanNet and ScanNet++ captures, not the {layout} layout")
    if layout == "scene":
        return read_scene(folder)
    if layout == "scannet":
        return read_scannet_scene(folder, views=max_frames, depth_scale=depth_scale)
    if layout.startswith("scannetpp"):
        device = layout.removeprefix("scannetpp").removeprefix("-") or None
        return read_scannetpp_scene(folder, device, depth_scale, max_frames)
    if layout == "insscene":
        return read_insscene_scene(folder, depth_scale=depth_scale)
    raise InputError(f"unknown capture layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
