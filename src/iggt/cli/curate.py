"""`iggt curate masks`: an RGB-D capture with poses plus per-frame 2D masks -> a scene in the scene
format with 3D-consistent instance IDs, and a report (docs/curation.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from iggt.curate.association import AssociationConfig

_DEFAULTS = AssociationConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    paths = parser.add_subparsers(dest="curate_path", metavar="PATH", required=True)
    masks = paths.add_parser(
        "masks", help="RGB-D frames + poses + per-frame 2D masks (path A)", description=__doc__.splitlines()[0]
    )
    masks.add_argument("--capture", type=Path, required=True, help="scene-format, ScanNet or InsScene-15K folder")
    masks.add_argument(
        "--masks", type=Path, required=True, help="folder of <frame>.png label images or <frame>.json COCO RLE, "
        "or an SA-V auto_masks.json"
    )
    masks.add_argument("--out", type=Path, required=True, help="folder to write <name>/ and curation_report.json into")
    masks.add_argument("--name", help="scene folder name (default: the capture folder's name)")
    masks.add_argument("--layout", choices=("scene", "scannet", "insscene"), help="capture layout (default: detected)")
    masks.add_argument("--depth-scale", type=float, default=1000.0, help="depth PNG units per metre (default 1000)")
    masks.add_argument(
        "--depth-tolerance", type=float, default=_DEFAULTS.depth_tolerance,
        help=f"relative depth difference of a reprojected point still seen (default {_DEFAULTS.depth_tolerance})",
    )
    masks.add_argument(
        "--stride", type=int, default=_DEFAULTS.stride, help=f"pixel sampling step (default {_DEFAULTS.stride})"
    )
    masks.add_argument("--overwrite", action="store_true", help="replace --out if it is not empty")
    masks.add_argument("--quiet", action="store_true", help="no progress bar")


def _config(args: argparse.Namespace) -> AssociationConfig:
    from iggt.errors import ConfigError

    if args.stride < 1 or not 0 < args.depth_tolerance < 1:
        raise ConfigError(f"--stride must be >= 1 and --depth-tolerance in (0, 1), got {args.stride}, "
                          f"{args.depth_tolerance}")
    return AssociationConfig(stride=args.stride, depth_tolerance=args.depth_tolerance)


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from iggt.curate.captures import read_capture
    from iggt.curate.from_masks import curate_with_masks
    from iggt.curate.mask_files import read_frame_masks
    from iggt.curate.report import REPORT_FILE
    from iggt.io.output_dir import claim_output_dir, publish, staging_dir, writing_into
    from iggt.io.scene_format import write_scene

    config = _config(args)
    inputs = [args.capture, args.masks]
    with claim_output_dir(args.out, inputs=inputs, overwrite=args.overwrite) as out, writing_into(args.out):
        capture = read_capture(args.capture, args.layout, args.depth_scale)
        masks = read_frame_masks(args.masks, capture.frame_names, capture.image_size)
        name = args.name or Path(args.capture).resolve().name
        with tqdm(total=capture.num_views, desc="iggt curate masks", unit="frame", disable=args.quiet) as bar:
            curated = curate_with_masks(capture, masks, config, name, on_frame=bar.update)
        with staging_dir(out) as stage:  # the folder appears complete or not at all
            write_scene(curated.scene, stage / name)
            curated.report.write(stage / REPORT_FILE)
            publish(stage, out, args.overwrite)
    print(f"{curated.report.summary()}. Wrote {out / name} and {out / REPORT_FILE}; train on it with "
          f"`iggt train data.sources=...` pointing at {out} (docs/curation.md).")
    return 0
