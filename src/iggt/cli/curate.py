"""`iggt curate {masks,mesh,video}`: captures -> scenes in the scene format with 3D-consistent
instance IDs, plus a report of what was kept and rejected (docs/curation.md).

- masks (path A): RGB-D frames + poses + per-frame 2D masks;
- mesh (path B): a mesh with per-vertex instance labels + the capture's poses, optional 2D proposals;
- video (path C): images or a video; the model supplies depth and cameras, masks from a folder or
  from IGGT's own instances.
"""

from __future__ import annotations

import argparse
from pathlib import Path

LAYOUTS = ("scene", "scannet", "scannetpp", "scannetpp-iphone", "scannetpp-dslr", "insscene")


def _add_output(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument("--out", type=Path, required=True, help="folder to write <name>/ and curation_report.json into")
    group.add_argument("--name", help="scene folder name (default: the input folder's name)")
    group.add_argument("--overwrite", action="store_true", help="replace --out if it is not empty")
    group.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_capture(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--capture", type=Path, required=True, help="scene-format, ScanNet, ScanNet++ or InsScene-15K folder"
    )
    parser.add_argument(
        "--layout", choices=LAYOUTS, help="capture layout (default: detected; scannetpp = iPhone if decoded, else DSLR)"
    )
    parser.add_argument("--depth-scale", type=float, default=1000.0, help="depth PNG units per metre (default 1000)")
    parser.add_argument(
        "--max-frames", type=int, help="read at most this many frames, evenly spaced (ScanNet and ScanNet++ only)"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    paths = parser.add_subparsers(dest="curate_path", metavar="PATH", required=True)
    masks = paths.add_parser("masks", help="RGB-D frames + poses + per-frame 2D masks (path A)")
    _add_capture(masks)
    masks.add_argument(
        "--masks",
        type=Path,
        required=True,
        help="folder of <frame>.png label images or <frame>.json COCO RLE, or an SA-V auto_masks.json",
    )
    masks.add_argument(
        "--depth-tolerance",
        type=float,
        default=0.05,
        help="relative depth difference of a reprojected point still seen (default 0.05)",
    )
    masks.add_argument("--stride", type=int, default=2, help="pixel sampling step of the association (default 2)")
    _add_output(masks)
    mesh = paths.add_parser("mesh", help="mesh with per-vertex instance labels + poses (path B)")
    _add_capture(mesh)
    mesh.add_argument(
        "--mesh",
        type=Path,
        help="the mesh PLY (ScanNet: <scene>_vh_clean_2.ply; default for a ScanNet++ capture: its scans/ files)",
    )
    mesh.add_argument(
        "--segments",
        type=Path,
        help="segments JSON (default beside the mesh: <mesh stem>.0.010000.segs.json, ScanNet++: segments.json)",
    )
    mesh.add_argument(
        "--aggregation",
        type=Path,
        help="aggregation JSON (default beside the mesh: <scene>.aggregation.json, ScanNet++: segments_anno.json)",
    )
    mesh.add_argument("--proposals", type=Path, help="optional per-frame 2D proposals (same formats as --masks)")
    mesh.add_argument(
        "--depth-tolerance",
        type=float,
        default=0.05,
        help="relative difference of rendered and sensor depth where the mesh is trusted (default 0.05)",
    )
    _add_output(mesh)
    video = paths.add_parser("video", help="images or a video; the model supplies depth and cameras (path C)")
    video.add_argument("--input", type=Path, required=True, help="a folder of images or a video file")
    video.add_argument("--masks", type=Path, help="per-frame masks named by frame stem (default: IGGT's own instances)")
    video.add_argument("--model", default="iggt-small", help="model name, weights file or hub id (default iggt-small)")
    video.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    video.add_argument("--max-frames", type=int, help="use at most this many frames, evenly spaced")
    video.add_argument("--fps", type=float, help="video frames per second to sample")
    _add_output(video)


def _tolerance(value: float) -> float:
    from iggt.errors import ConfigError

    if not 0 < value < 1:
        raise ConfigError(f"--depth-tolerance must be in (0, 1), got {value}")
    return value


def _mesh_files(args: argparse.Namespace, layout: str) -> tuple[Path, Path, Path]:
    """The PLY, segments and aggregation paths: a ScanNet++ capture's scans/ files without --mesh,
    else the names beside the mesh (ScanNet++'s for mesh_aligned_0.05.ply, else ScanNet's)."""
    from iggt.curate.scannetpp_reader import ANNOTATION_FILE, MESH_FILE, SEGMENTS_FILE, scannetpp_mesh_files
    from iggt.errors import InputError

    if args.mesh is None:
        if not layout.startswith("scannetpp"):
            raise InputError(f"--mesh is needed: the capture {args.capture} is not a ScanNet++ scene with scans/")
        ply, segments, aggregation = scannetpp_mesh_files(args.capture)
        return ply, args.segments or segments, args.aggregation or aggregation
    ply = args.mesh
    if ply.name == MESH_FILE:
        segments = args.segments or ply.with_name(SEGMENTS_FILE)
        aggregation = args.aggregation or ply.with_name(ANNOTATION_FILE)
    else:
        scene = ply.name.removesuffix(".ply").removesuffix("_vh_clean_2")
        segments = args.segments or ply.with_name(f"{ply.name.removesuffix('.ply')}.0.010000.segs.json")
        aggregation = args.aggregation or ply.with_name(f"{scene}.aggregation.json")
    for label, path in (("--mesh", ply), ("--segments", segments), ("--aggregation", aggregation)):
        if not path.is_file():
            raise InputError(f"{label} {path} does not exist; pass {label} explicitly")
    return ply, segments, aggregation


def _prepare(args: argparse.Namespace):
    """Read and check every input of the chosen path; returns (curate(on_frame) -> Curated, frames or
    None when the path shows its own progress)."""
    from iggt.curate.captures import detect_layout, read_capture
    from iggt.curate.mask_files import read_frame_masks

    if args.curate_path == "video":
        from iggt.curate.from_video import curate_video

        def curate(_on_frame):  # reconstruct() shows its own progress bars
            return curate_video(
                args.input,
                args.model,
                args.masks,
                scene_name=args.name_resolved,
                device=args.device,
                max_frames=args.max_frames,
                fps=args.fps,
                progress=not args.quiet,
            )

        return curate, None
    layout = args.layout or detect_layout(args.capture)
    capture = read_capture(args.capture, layout, args.depth_scale, args.max_frames)
    if args.curate_path == "masks":
        from iggt.curate.association import AssociationConfig
        from iggt.curate.from_masks import curate_with_masks
        from iggt.errors import ConfigError

        if args.stride < 1:
            raise ConfigError(f"--stride must be >= 1, got {args.stride}")
        config = AssociationConfig(stride=args.stride, depth_tolerance=_tolerance(args.depth_tolerance))
        masks = read_frame_masks(args.masks, capture.frame_names, capture.image_size)
        return lambda on_frame: curate_with_masks(capture, masks, config, args.name_resolved, on_frame), len(masks)
    from iggt.curate.from_mesh import MeshConfig, curate_with_mesh
    from iggt.curate.mesh_labels import read_scannet_mesh

    mesh = read_scannet_mesh(*_mesh_files(args, layout))
    proposals = read_frame_masks(args.proposals, capture.frame_names, capture.image_size) if args.proposals else None
    config = MeshConfig(depth_tolerance=_tolerance(args.depth_tolerance))
    curate = lambda on_frame: curate_with_mesh(capture, mesh, proposals, config, args.name_resolved, on_frame)  # noqa: E731
    return curate, capture.num_views if proposals else None


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from iggt.curate.report import REPORT_FILE
    from iggt.io.output_dir import claim_output_dir, publish, staging_dir, writing_into
    from iggt.io.scene_format import write_scene

    source = args.input if args.curate_path == "video" else args.capture
    inputs = [
        p
        for p in (source, getattr(args, "masks", None), getattr(args, "mesh", None), getattr(args, "proposals", None))
        if p is not None
    ]
    args.name_resolved = args.name or (
        Path(source).resolve().stem if Path(source).is_file() else Path(source).resolve().name
    )
    with claim_output_dir(args.out, inputs=inputs, overwrite=args.overwrite) as out, writing_into(args.out):
        curate, frames = _prepare(args)
        with tqdm(
            total=frames, desc=f"iggt curate {args.curate_path}", unit="frame", disable=args.quiet or frames is None
        ) as bar:
            curated = curate(bar.update)
        with staging_dir(out) as stage:  # the folder appears complete or not at all
            write_scene(curated.scene, stage / args.name_resolved)
            curated.report.write(stage / REPORT_FILE)
            publish(stage, out, args.overwrite)
    print(
        f"{curated.report.summary()}. Wrote {out / args.name_resolved} and {out / REPORT_FILE}; fine-tune on it "
        f"with a data source {{kind: folder, path: {out}}} (docs/curation.md)."
    )
    return 0
