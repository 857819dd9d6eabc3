"""`iggt track`: follow one instance of a saved reconstruction through every view."""

from __future__ import annotations

import argparse
from pathlib import Path

from iggt.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("result", type=Path, help="export folder written by `iggt reconstruct`")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--instance", type=int, help="instance ID to track")
    which.add_argument("--view", type=int, help="with --xy: track the instance under a pixel of this view")
    parser.add_argument("--xy", type=int, nargs=2, metavar=("X", "Y"), help="pixel column and row (network resolution)")
    parser.add_argument("--out", type=Path, help="output folder (default RESULT/track_<ID>)")
    from iggt.tasks.tracking import TrackingConfig

    default = TrackingConfig.depth_tolerance
    parser.add_argument(
        "--depth-tolerance", type=float, default=default, help=f"relative depth-test tolerance ({default})"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")


def run(args: argparse.Namespace) -> int:
    from iggt.tasks.output import default_output_folder, write_output_folder
    from iggt.tasks.result import load_result
    from iggt.tasks.track_output import write_track
    from iggt.tasks.tracking import TrackingConfig, instance_at_pixel, track_instance

    if (args.view is None) != (args.xy is None):
        raise InputError("--view and --xy go together: --view V --xy X Y picks the instance under a pixel")
    result = load_result(args.result)
    instance_id = args.instance if args.instance is not None else instance_at_pixel(result, args.view, *args.xy)
    track = track_instance(result, instance_id, TrackingConfig(depth_tolerance=args.depth_tolerance))
    out = args.out or default_output_folder(result, f"track_{instance_id}")
    write_output_folder(result, out, lambda folder: write_track(track, folder), args.overwrite)
    states = ", ".join(f"{view.view}:{view.state.value}" for view in track.views)
    print(f"Instance {instance_id}: {states}; centroid {track.centroid.round(3).tolist()}; wrote {out}")
    return 0
