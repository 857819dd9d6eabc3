"""What each export format costs: every writer alone, then export_all as ``iggt reconstruct`` runs it.

Builds Predictions + Instances of S frames at H x W whose content compresses like a real scene's:
a smooth depth field (a floor, a wall, rolling bumps) seen by cameras walking forward, world points
unprojected from it, confidences that fall off with depth, textured images with sensor noise, unit
instance features that are constant per object plus noise, and a handful of instance labels (boxes
that drift across the views). Zeros or pure noise would compress far better or far worse than a
network's float32 maps. The reconstruction's own files (``original_resolution/``, at --original-size,
and ``reconstruction.json``) are timed as the row "original_resolution", as Reconstruction.save
writes them.

Each writer is timed alone into a fresh folder (--repeat times, best kept), then export_all with the
formats ``iggt reconstruct`` ran in benchmarks/results/reconstruct_h200.json (npz glb masks colmap
json, plus original_resolution) as a whole.

Usage:
    python benchmarks/export_costs.py --frames 100 --size 336 518
    python benchmarks/export_costs.py --frames 20 --size 336 518 --label after
Prints a table and adds a run (replacing one of the same machine, size and label) to
benchmarks/results/export_costs_cpu.json (or --out).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
WHOLE_FORMATS = ("npz", "glb", "masks", "colmap", "json")
"""The formats of the measured ``iggt reconstruct`` run (benchmarks/results/reconstruct_h200.json)."""
OBJECTS = 6


def make_scene(frames: int, height: int, width: int, channels: int, seed: int = 0):
    """Predictions + Instances of a forward walk through a room, in float32 (see the module doc)."""
    from iggt.instances import lift_instances
    from iggt.structures import Predictions

    rng = np.random.default_rng(seed)
    f32 = np.float32
    v, u = np.meshgrid(np.arange(height, dtype=f32), np.arange(width, dtype=f32), indexing="ij")
    focal = f32(0.9 * width)
    cx, cy = f32(width / 2), f32(height / 2)
    images = np.empty((frames, height, width, 3), f32)
    depth = np.empty((frames, height, width), f32)
    labels = np.zeros((frames, height, width), np.int32)
    features = np.empty((frames, height, width, channels), f32)
    centres = rng.normal(size=(OBJECTS + 1, channels)).astype(f32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    boxes = rng.uniform(0.1, 0.8, (OBJECTS, 2)) * (height, width)
    sizes = rng.uniform(0.1, 0.3, (OBJECTS, 2)) * (height, width)
    stripes = 0.5 + 0.25 * np.sin(u / 7.0)[..., None] * np.array([1.0, 0.6, 0.3], f32)
    for view in range(frames):
        phase = 0.05 * view
        floor = 3.0 + 0.8 * np.sin(u / width * 3 + phase) + 0.5 * np.cos(v / height * 2 - phase)
        depth[view] = floor + 0.3 * np.sin(u / 23.0 + v / 31.0 + phase)
        labels[view] = 0
        for obj, ((top, left), (tall, wide)) in enumerate(zip(boxes, sizes, strict=True)):
            top, left = int(top + 2 * view) % height, int(left + 3 * view) % width
            labels[view, top : top + int(tall), left : left + int(wide)] = obj + 1
        shade = (0.6 + 0.4 * np.cos(depth[view] * 2))[..., None]
        images[view] = np.clip(stripes * shade + rng.normal(0, 0.02, (height, width, 3)), 0, 1)
        features[view] = centres[labels[view]] + rng.normal(0, 0.05, (height, width, channels))
    features /= np.linalg.norm(features, axis=-1, keepdims=True)
    extrinsic = np.zeros((frames, 3, 4), f32)
    extrinsic[:, :, :3] = np.eye(3, dtype=f32)
    extrinsic[:, 2, 3] = -0.05 * np.arange(frames)  # walking forward along +z: t = -R c
    intrinsic = np.tile(np.array([[focal, 0, cx], [0, focal, cy], [0, 0, 1]], f32), (frames, 1, 1))
    rays = np.stack([(u - cx) / focal, (v - cy) / focal, np.ones_like(u)], -1)
    world_points = rays[None] * depth[..., None] - extrinsic[:, None, None, :, 3]
    confidence = (1 + 4 / depth + rng.gamma(2.0, 0.1, depth.shape)).astype(f32)
    pose_enc = np.zeros((frames, 9), f32)
    pose_enc[:, 6] = 1
    predictions = Predictions(
        images=images,
        extrinsic=extrinsic,
        intrinsic=intrinsic,
        depth=depth,
        depth_conf=confidence,
        world_points=world_points.astype(f32),
        world_points_conf=confidence,
        instance_feat=features,
        pose_enc=pose_enc,
    )
    return predictions, lift_instances(labels, predictions.world_points, confidence, features)


def original_resolution_writers(predictions, instances, size: tuple[int, int]) -> dict:
    """The files Reconstruction.save adds: labels and depth at the inputs' size, and reconstruction.json."""
    from iggt.export.reconstruction import write_original_resolution, write_summary

    rows = np.linspace(0, instances.labels.shape[1] - 1, size[0]).round().astype(int)
    columns = np.linspace(0, instances.labels.shape[2] - 1, size[1]).round().astype(int)
    labels = [view[np.ix_(rows, columns)] for view in instances.labels]
    depth = [view[np.ix_(rows, columns)] for view in predictions.depth]
    return {
        "summary": partial(write_summary, {"num_views": predictions.num_views}),
        "original_resolution": partial(write_original_resolution, labels, depth),
    }


def timed(write, repeat: int, scratch: Path) -> tuple[float, float, int]:
    """Best wall seconds of ``write(folder)`` over ``repeat`` fresh folders, the CPU seconds (all
    threads) of that run, and the bytes it wrote."""
    best, cpu, size = float("inf"), 0.0, 0
    for attempt in range(repeat):
        folder = scratch / f"run{attempt}"
        folder.mkdir()
        start, start_cpu = time.perf_counter(), time.process_time()
        files = write(folder)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
        if seconds < best:
            best, cpu = seconds, cpu_seconds
        size = sum(Path(file).stat().st_size for file in files)
        shutil.rmtree(folder)
    return best, cpu, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--size", type=int, nargs=2, default=[336, 518], metavar=("H", "W"))
    parser.add_argument("--original-size", type=int, nargs=2, default=[336, 504], metavar=("H", "W"))
    parser.add_argument("--channels", type=int, default=8, help="instance_feat channels (large: instance_dim 8)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads", type=int, help="ExportOptions.threads (default: every CPU)")
    parser.add_argument("--store-floats", action="store_true", help="ExportOptions(deflate_npz_floats=False)")
    parser.add_argument("--label", default="", help="which code was measured (e.g. before / after)")
    parser.add_argument("--machine", default="", help="where it ran (default: the CPU count and processor)")
    parser.add_argument("--skip", nargs="*", default=[], help="writers not timed alone (e.g. ply without plyfile)")
    parser.add_argument("--out", type=Path, default=RESULTS / "export_costs_cpu.json")
    args = parser.parse_args()

    import torch

    from iggt.export import EXPORTERS, ExportOptions, export_all

    start = time.perf_counter()
    predictions, instances = make_scene(args.frames, *args.size, args.channels)
    print(f"scene of {args.frames} x {args.size[0]} x {args.size[1]} built in {time.perf_counter() - start:.1f} s")
    settings = {"threads": args.threads} if args.threads else {}  # only what was asked: older code has neither
    settings |= {"deflate_npz_floats": False} if args.store_floats else {}
    options = ExportOptions(**settings)
    extra = original_resolution_writers(predictions, instances, tuple(args.original_size))
    writers = {
        name: partial(write, predictions, instances, options=options)
        for name, write in EXPORTERS.items()
        if name not in args.skip
    }
    writers["original_resolution"] = lambda folder: [f for write in extra.values() for f in write(folder)]
    seconds, cpu, sizes = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="iggt-export-costs-") as scratch:
        for name, write in writers.items():
            (Path(scratch) / name).mkdir()
            seconds[name], cpu[name], sizes[name] = timed(write, args.repeat, Path(scratch) / name)
            print(f"  {name:<20} {seconds[name]:8.2f} s {sizes[name] / 1e6:10.1f} MB", flush=True)

        def whole(folder: Path) -> list[Path]:
            written = export_all(
                predictions, instances, folder / "out", WHOLE_FORMATS, options=options, extra_writers=extra
            )
            return [file for files in written.values() for file in files]

        (Path(scratch) / "whole").mkdir()
        total, total_cpu, total_bytes = timed(whole, args.repeat, Path(scratch) / "whole")
    parts = (*WHOLE_FORMATS, "original_resolution")
    print(f"{'format':<20} {'wall s':>8} {'CPU s':>8} {'MB':>10}")
    for name in seconds:
        print(f"{name:<20} {seconds[name]:>8.2f} {cpu[name]:>8.2f} {sizes[name] / 1e6:>10.1f}")
    print(f"{'sum of the formats':<20} {sum(seconds[p] for p in parts):>8.2f} {sum(cpu[p] for p in parts):>8.2f}")
    print(f"{'export_all of them':<20} {total:>8.2f} {total_cpu:>8.2f} {total_bytes / 1e6:>10.1f}")
    record = {
        "label": args.label,
        "machine": args.machine or f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "frames": args.frames,
        "height": args.size[0],
        "width": args.size[1],
        "original_size": args.original_size,
        "channels": args.channels,
        "instances": int(instances.num_instances),
        "repeat": args.repeat,
        "options": settings,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "bytes": sizes,
        "export_all_formats": [*WHOLE_FORMATS, "original_resolution"],
        "export_all_s": total,
        "export_all_cpu_s": total_cpu,
        "export_all_bytes": total_bytes,
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    runs = json.loads(args.out.read_text())["runs"] if args.out.exists() else []
    key = ("machine", "frames", "height", "width", "label")
    runs = [run for run in runs if any(run.get(k) != record[k] for k in key)] + [record]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "export_costs", "runs": runs}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
