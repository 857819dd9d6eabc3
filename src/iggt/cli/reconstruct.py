"""`iggt reconstruct`: photos, a scene folder or a video in; cameras, depth, points and instances out."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from iggt.errors import InputError
from iggt.io.output_dir import claim_output_dir
from iggt.model.hub import DEFAULT_MODEL

EXAMPLE_SCENE = Path(__file__).resolve().parent.parent / "assets" / "example_scene"
# How to look at each kind of output, keyed by file suffix (a folder is keyed by its name).
VIEWERS = {
    ".glb": "Blender (File > Import > glTF 2.0) or any glTF viewer",
    ".ply": "MeshLab or CloudCompare",
    "colmap": "the COLMAP GUI (File > Import model)",
    "original_resolution": "an image viewer (16-bit IDs) and numpy.load (depth), at each input's size",
    ".png": "any image viewer",
    ".npz": "Python (numpy.load)",
    ".json": "any text editor",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="a folder of images, image files, or a video")
    parser.add_argument("--out", type=Path, metavar="DIR", help="output folder (required)")
    parser.add_argument("--example", action="store_true", help="reconstruct the example scene shipped with iggt")
    model = parser.add_argument_group("model and compute")
    model.add_argument(
        "--model", default=DEFAULT_MODEL, metavar="NAME_OR_PATH", help="shipped name, weights file/folder, or hub id"
    )
    model.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    model.add_argument("--dtype", default="auto", help="trunk precision: auto, float32, bfloat16, float16")
    model.add_argument("--chunk", type=int, metavar="N", help="frames per dense-head pass; lower it if memory runs out")
    frames = parser.add_argument_group("frames")
    frames.add_argument("--max-frames", type=int, metavar="N", help="use at most N views, evenly spaced")
    sampling = frames.add_mutually_exclusive_group()
    sampling.add_argument("--fps", type=float, metavar="F", help="video: keep about F frames per second (default 1)")
    sampling.add_argument("--frames", type=int, metavar="N", help="video: keep N frames evenly spaced")
    frames.add_argument(
        "--mode", choices=("crop", "pad"), default="crop", help="fit to the network: crop the height or pad to square"
    )
    output = parser.add_argument_group("instances and output")
    output.add_argument(
        "--granularity",
        choices=("coarse", "medium", "fine"),
        default="medium",
        help="coarse: whole objects, fine: parts (default: medium)",
    )
    output.add_argument(
        "--min-instance-size",
        type=float,
        metavar="SIZE",
        help="smallest instance: pixels if >= 1, else a fraction of all pixels",
    )
    output.add_argument(
        "--formats", nargs="+", metavar="FORMAT", help="npz ply glb masks colmap json (default: all of them)"
    )
    output.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    output.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    inputs = _inputs(args)
    if args.out is None:
        raise InputError("--out DIR is required: the folder to write the reconstruction to")
    # Checked and locked before any work, so a long run never fails at the end on its destination.
    with claim_output_dir(args.out, inputs=inputs, overwrite=args.overwrite):
        return _reconstruct(args, inputs)


def _reconstruct(args: argparse.Namespace, inputs: list[str]) -> int:
    from iggt.export import check_formats
    from iggt.inference.reconstruct import reconstruct
    from iggt.instances.config import InstanceConfig

    check_formats(args.formats or ())  # export checks again; here a typo costs no model run
    if args.min_instance_size is not None and args.min_instance_size <= 0:
        raise InputError(
            f"--min-instance-size must be positive (pixels if >= 1, else a fraction of all pixels), "
            f"got {args.min_instance_size:g}"
        )
    overrides = {} if args.min_instance_size is None else {"min_instance_size": args.min_instance_size}
    instance_config = InstanceConfig.for_granularity(args.granularity, **overrides)
    start = time.perf_counter()
    reconstruction = reconstruct(
        inputs,
        args.model,
        device=args.device,
        dtype=args.dtype,
        max_frames=args.max_frames,
        chunk_size=args.chunk,
        mode=args.mode,
        instance_config=instance_config,
        fps=args.fps,
        frames=args.frames,
        progress=not args.quiet,
    )
    written = reconstruction.save(args.out, args.formats, args.overwrite, progress=not args.quiet)
    print(summary(reconstruction, args.out, written, time.perf_counter() - start))
    return 0


def _inputs(args: argparse.Namespace) -> list[str]:
    if args.example:
        if args.inputs:
            raise InputError("--example reconstructs the shipped scene: give no INPUT with it")
        if not (EXAMPLE_SCENE / "images").is_dir():
            raise InputError(f"the example scene is missing from {EXAMPLE_SCENE}; reinstall iggt")
        return [str(EXAMPLE_SCENE)]
    if not args.inputs:
        raise InputError("no INPUT given: pass a folder of images, image files or a video (or --example)")
    return args.inputs


def summary(reconstruction, out_dir: Path, written: list[Path], total_seconds: float) -> str:
    """What was done, how long each stage took, where the files went and how to open them."""
    rec = reconstruction
    height, width = rec.predictions.image_size
    timings = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in rec.timings.items())
    lines = [
        f"reconstructed {rec.num_views} view(s) at {width}x{height} with {rec.model_name} on {rec.device} "
        f"({rec.dtype}): {rec.instances.num_instances} instance(s), "
        f"{int(((rec.instances.pixel_counts > 0).sum(1) > 1).sum())} of them with the same ID in 2 or more views",
        *(f"  note: {note}" for note in rec.notes),
        f"  time: {timings} (total {total_seconds:.1f} s)",
        f"  wrote {len(written)} file(s) to {out_dir}/",
    ]
    lines += [f"  {name}: open in {viewer}" for name, viewer in _viewing_hints(out_dir, written)]
    return "\n".join(lines)


def _viewing_hints(out_dir: Path, written: list[Path]) -> list[tuple[str, str]]:
    """(entry relative to out_dir, viewer) for each top-level output, a folder shown once."""
    hints: dict[str, str] = {}
    for path in written:
        try:
            relative = Path(path).absolute().relative_to(out_dir.absolute())
        except ValueError:
            relative = Path(path)
        top = relative.parts[0]
        is_folder = len(relative.parts) > 1
        key = top if top in VIEWERS else Path(path).suffix.lower()
        if key in VIEWERS:
            hints.setdefault(f"{top}/" if is_folder else top, VIEWERS[key])
    return sorted(hints.items())
