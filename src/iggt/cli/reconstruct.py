"""`iggt reconstruct`: photos, a scene folder or a video in; cameras, depth, points and instances out."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from iggt.cli.options import (
    add_compute_options,
    add_fast_mode_option,
    add_fit_option,
    add_frame_options,
    add_instance_options,
    add_model_options,
    add_window_options,
    compute_options,
    fast_mode_option,
    frame_options,
    instance_config,
    window_options,
)
from iggt.errors import InputError
from iggt.io.output_dir import claim_output_dir

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
    add_model_options(model)
    add_compute_options(model)
    add_fast_mode_option(model)
    frames = parser.add_argument_group("frames")
    add_frame_options(frames)
    add_fit_option(frames)
    add_window_options(frames)
    output = parser.add_argument_group("instances and output")
    add_instance_options(output)
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
    from iggt.inference.host_allocator import keep_freed_memory
    from iggt.inference.reconstruct import reconstruct

    check_formats(args.formats or ())  # export checks again; here a typo costs no model run
    compute = compute_options(args)
    fast_mode = fast_mode_option(args)
    frames = frame_options(args)
    windows = window_options(args)
    instance_settings = instance_config(args, compute.device)
    # Process-wide, so only where `iggt` is the process (it ends after this run), never inside a
    # caller's process such as a test session; a run with a store keeps its memory flat instead.
    if args.owns_process and windows.store is None:
        keep_freed_memory()
    start = time.perf_counter()
    reconstruction = reconstruct(
        inputs,
        args.model,
        device=compute.device,
        dtype=compute.dtype,
        head_dtype=compute.head_dtype,
        max_frames=frames.max_frames,
        chunk_size=compute.chunk_size,
        mode=args.mode,
        instance_config=instance_settings,
        fps=frames.fps,
        frames=frames.frames,
        progress=not args.quiet,
        window=windows.window,
        overlap=windows.overlap,
        store=windows.store,
        fast_mode=fast_mode,
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
        f"({rec.dtype}, attention {rec.attention}{_mode_note(rec.fast_mode)}): {rec.instances.num_instances} "
        "instance(s), "
        f"{int(((rec.instances.pixel_counts > 0).sum(1) > 1).sum())} of them with the same ID in 2 or more views",
        *(f"  note: {note}" for note in rec.notes),
        f"  time: {timings} (total {total_seconds:.1f} s)",
        f"  wrote {len(written)} file(s) to {out_dir}/",
    ]
    lines += [f"  {name}: open in {viewer}" for name, viewer in _viewing_hints(out_dir, written)]
    return "\n".join(lines)


def _mode_note(fast_mode: str) -> str:
    """How the summary names an approximate fast mode (nothing for the exact default)."""
    return "" if fast_mode == "exact" else f", {fast_mode} fast mode"


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
