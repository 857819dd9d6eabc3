"""`iggt reconstruct` end to end on a GPU, split by stage: reading, network, instance step, export.

Renders one engine walk-through (seed 5) on the device at --size, writes its frames as JPEG files
(or, with --video, as one H.264 .mp4 read back through imageio's ffmpeg, every frame kept), and
reconstructs them with :func:`iggt.reconstruct` (what the command runs) and ``Reconstruction.save``
(its export of every format), after one warm-up run of 8 frames. The model
is a randomly initialised --preset (seed 0; time does not depend on the weights' values, but the
instance step's does on the clusters found, so say which), or --model (a shipped name or a path).
The table shows each stage's seconds and its share of the total, the instance step split into its
parts below it (``instance_parts_s``: points, clustering, assignment, majority filter, lifting;
:mod:`iggt.instances.profile`); issue 20 asks for the instance step to be at most 10 %. In a
windowed run (``windows``, with ``windows: network`` its network passes) the windows' instance step
overlaps the next window's pass on the GPU, so its parts' wall time includes waiting for that pass;
its share there is what the passes did not hide, ``windows - windows: network``.

Usage:
    python benchmarks/reconstruct_gpu.py --frames 100 --preset large --size 336 504 --out $OUT/reconstruct_gpu.json
    python benchmarks/reconstruct_gpu.py --frames 1000 --preset large --store /tmp/store --out $OUT/r1000.json
    python benchmarks/reconstruct_gpu.py --frames 1000 --preset large --video --store /tmp/store --out $OUT/v1000.json
    python benchmarks/reconstruct_gpu.py --frames 4 --preset small --size 56 84 --device cpu --out /tmp/r.json
Prints a table and writes benchmarks/results/reconstruct_<device>.json (or --out).
"""

from __future__ import annotations

import argparse
import datetime
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results"
SEED = 5
INSTANCE_SHARE_TARGET = 0.10


def write_frames(folder: Path, frames: int, size: tuple[int, int], device: str) -> Path:
    """The walk's frames as JPEG files ``frame_0000.jpg`` ... in ``folder``."""
    from PIL import Image

    from iggt.synth.config import SceneConfig
    from iggt.synth.generate import render_scenes

    scene = next(render_scenes([SEED], frames, size, SceneConfig(trajectory_weights={"walk": 1.0}), device=device))
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(scene.images):
        pixels = np.asarray(image)
        if pixels.dtype != np.uint8:
            pixels = (np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"frame_{index:04d}.jpg", quality=95)
    return folder


def write_video(folder: Path, path: Path, fps: float = 30.0) -> Path:
    """The JPEG frames of ``folder`` as one H.264 .mp4 at ``path`` (what a phone's capture gives)."""
    import imageio.v2 as imageio
    from PIL import Image

    # macro_block_size=1: keep the frames' size (imageio would pad 504 to 512)
    writer = imageio.get_writer(str(path), format="FFMPEG", fps=fps, codec="libx264", quality=9, macro_block_size=1)
    with writer:
        for frame in sorted(folder.iterdir()):
            writer.append_data(np.asarray(Image.open(frame).convert("RGB")))
    return path


def run_once(folder: Path, model, device: str, out: Path, formats=None, **options) -> dict:
    """One reconstruction of ``folder`` and its export; ``options`` go to :func:`iggt.reconstruct`
    (window, overlap, store, fast_mode; frames for a video)."""
    from iggt.inference.reconstruct import reconstruct
    from iggt.instances.profile import instance_profile

    start = time.perf_counter()
    with instance_profile() as parts:
        result = reconstruct(str(folder), model, device=device, progress=False, **options)
    export_start = time.perf_counter()
    result.save(out, formats, overwrite=True, progress=False)
    stages = {**result.timings, "export": time.perf_counter() - export_start}
    total = time.perf_counter() - start
    if "windows" in stages:
        # the windows' instance step overlaps the next window's network pass on a GPU, so its parts'
        # wall time includes waiting for that pass; what it adds to the run is what the passes did not hide
        instance_s = max(0.0, stages["windows"] - stages["windows: network"])
    else:
        instance_s = stages.get("instances", 0.0)
    return {
        "stages_s": stages,
        "total_s": total,
        "instance_s": instance_s,
        "instance_share": instance_s / total,
        "instance_parts_s": parts,
        "instances": int(result.instances.num_instances),
        "network_size": list(result.predictions.image_size),
        "attention": result.attention,
        "notes": result.notes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--size", type=int, nargs=2, default=[336, 504], metavar=("H", "W"))
    parser.add_argument("--preset", default="large", help="randomly initialised preset (seed 0)")
    parser.add_argument("--model", help="a shipped model name or weights path instead of --preset")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--formats", nargs="+", help="export formats (default: all)")
    parser.add_argument("--window", type=int, help="windows of this many frames (default: automatic)")
    parser.add_argument("--overlap", type=int, default=4)
    parser.add_argument("--store", type=Path, help="an empty folder for the windows' result and the network input")
    parser.add_argument("--fast-mode", help="an approximate preset (avggt, kv-subsample, merge); default exact")
    parser.add_argument("--video", action="store_true", help="reconstruct the frames as one .mp4, every frame kept")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    options = {"window": args.window, "overlap": args.overlap, "store": args.store, "fast_mode": args.fast_mode}
    if args.video:
        options["frames"] = args.frames

    from iggt.device import resolve_device, resolve_dtype
    from iggt.inference.runner import store_weights_for_inference
    from iggt.model.hub import load_model
    from iggt.model.iggt import IGGT

    if args.model:
        model, name = load_model(args.model), args.model
    else:
        torch.manual_seed(0)
        with torch.device(args.device):
            model = IGGT.from_preset(args.preset).eval()
        name = f"{args.preset} (random weights, seed 0)"
    # As `iggt reconstruct` holds a model it loads (reconstruct() leaves a module it is handed alone).
    store_weights_for_inference(model, resolve_device(args.device), resolve_dtype("auto", resolve_device(args.device)))
    with tempfile.TemporaryDirectory(prefix="iggt-reconstruct-gpu-") as scratch:
        scratch = Path(scratch)
        frames = write_frames(scratch / "frames", args.frames, tuple(args.size), args.device)
        warm = scratch / "warm"
        warm.mkdir()
        for path in sorted(frames.iterdir())[:8]:
            (warm / path.name).symlink_to(path)
        run_once(warm, model, args.device, scratch / "out-warm", args.formats)
        source = write_video(frames, scratch / "walk.mp4") if args.video else frames
        row = run_once(source, model, args.device, scratch / "out", args.formats, **options)
        row["input"] = "H.264 .mp4" if args.video else "JPEG folder"
        row["formats"] = args.formats or "all"
        row["options"] = {key: str(value) if isinstance(value, Path) else value for key, value in options.items()}
    if torch.cuda.is_available() and args.device != "cpu":
        row["peak_gb"] = torch.cuda.max_memory_allocated() / 1e9
    print(f"{'stage':<28} {'s':>8} {'share':>7}")
    for stage, seconds in row["stages_s"].items():
        print(f"{stage:<28} {seconds:>8.2f} {seconds / row['total_s']:>7.1%}")
        if stage in ("instances", "windows: network"):  # a windowed run's parts: its windows' labels
            for part, part_seconds in row["instance_parts_s"].items():
                print(f"{'  ' + part:<28} {part_seconds:>8.2f} {part_seconds / row['total_s']:>7.1%}")
    print(f"{'total':<28} {row['total_s']:>8.2f}   instance step {row['instance_share']:.1%} "
          f"(target <= {INSTANCE_SHARE_TARGET:.0%})")  # fmt: skip
    device_name = torch.cuda.get_device_name() if args.device != "cpu" else "cpu"
    record = {
        "benchmark": "reconstruct_gpu",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device_name,
        "torch": torch.__version__,
        "model": name,
        "frames": args.frames,
        "height": args.size[0],
        "width": args.size[1],
        **row,
    }
    out = args.out or RESULTS / f"reconstruct_{'cpu' if args.device == 'cpu' else 'cuda'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
