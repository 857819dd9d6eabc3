"""Throughput of the procedural scene engine: views per second of training batches.

Measured per device, at ``--size`` with ``--views``-view scenes, ``--batch-size`` scenes per batch:
- prepare: layouts and cameras drawn on the host (one process), scenes/s;
- render: rendering prepared scenes and building the normalised training batch on the device
  (what the stream's consumer waits for when preparation runs in worker processes), views/s,
  with shadows on and off, and with torch.compile when ``--compile`` is given;
- stream: SyntheticSceneStream end to end with ``--prepare-workers`` worker processes, views/s.

Usage:
    python benchmarks/synth_throughput.py --device cpu
    python benchmarks/synth_throughput.py --device cuda --compile --prepare-workers 6
Prints a table and writes benchmarks/results/synth_throughput_<device>.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from itertools import islice
from pathlib import Path

import torch

from iggt.data.synthetic_stream import SyntheticSceneStream, SyntheticStreamConfig
from iggt.synth.config import RenderConfig, SceneConfig
from iggt.synth.prepare import SceneRequest, prepare_scenes
from iggt.synth.seeds import derive_training_seed

RESULTS = Path(__file__).parent / "results"
# Per device: scenes per batch, timed batches, untimed warm-up batches (CPU runs are kept short).
DEFAULT_LOAD = {"cpu": (1, 1, 0), "cuda": (8, 10, 2)}
DEFAULT_RAYS_PER_CHUNK = {"cpu": 1 << 16, "cuda": 1 << 22}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def prepared_batches(count: int, batch_size: int, views: int, size: tuple[int, int]) -> list:
    config = SceneConfig()
    return [
        prepare_scenes(
            [SceneRequest(derive_training_seed(123, step * batch_size + b), views, size) for b in range(batch_size)],
            config,
        )
        for step in range(count)
    ]


def time_prepare(batch_size: int, views: int, size: tuple[int, int]) -> float:
    """Scenes per second of host-side preparation in this process."""
    scenes = max(8, batch_size)
    start = time.perf_counter()
    prepared_batches(1, scenes, views, size)
    return scenes / (time.perf_counter() - start)


def time_render(args, device: torch.device, render: RenderConfig) -> dict:
    """Views per second of rendering + batch building on already prepared scenes."""
    batch_size, steps, warmup = args.load
    config = SyntheticStreamConfig(num_views=args.views, image_size=args.size, batch_size=batch_size, render=render)
    stream = SyntheticSceneStream(config, device)
    batches = prepared_batches(steps + warmup, batch_size, args.views, args.size)
    start = time.perf_counter()
    for prepared in batches[:warmup]:  # includes compilation
        stream.render_batch(prepared)
    synchronize(device)
    warmup_s = time.perf_counter() - start
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    synchronize(device)
    start = time.perf_counter()
    for prepared in batches[warmup:]:
        stream.render_batch(prepared)
    synchronize(device)
    elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"views_per_s": steps * batch_size * args.views / elapsed, "peak_memory_gib": peak, "warmup_s": warmup_s}


def time_stream(args, device: torch.device) -> float:
    batch_size, steps, warmup = args.load
    config = SyntheticStreamConfig(
        num_views=args.views,
        image_size=args.size,
        batch_size=batch_size,
        render=RenderConfig(shadows=True, compile=args.compile, rays_per_chunk=args.rays_per_chunk),
        prepare_workers=args.prepare_workers,
    )
    iterator = iter(SyntheticSceneStream(config, device))
    for _ in islice(iterator, warmup + (args.prepare_workers > 0)):  # workers need a first batch to start
        pass
    synchronize(device)
    start = time.perf_counter()
    for _ in islice(iterator, steps):
        pass
    synchronize(device)
    return steps * batch_size * args.views / (time.perf_counter() - start)


def measure(args, device: torch.device, save) -> dict:
    """Every row of the report; ``save(report)`` runs after each row so a cut-off run keeps its rows."""
    batch_size, steps, _ = args.load
    report = {
        "device": device_name(device),
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "image_size": list(args.size),
        "views_per_scene": args.views,
        "scenes_per_batch": batch_size,
        "timed_batches": steps,
        "prepare_workers": args.prepare_workers,
        "rays_per_chunk": args.rays_per_chunk,
        "prepare_scenes_per_s": time_prepare(batch_size, args.views, args.size),
        "rows": [],
    }
    for compiled in (False, True) if args.compile else (False,):
        for shadows in (False, True):
            render = RenderConfig(shadows=shadows, compile=compiled, rays_per_chunk=args.rays_per_chunk)
            row = {"measure": "render", "shadows": shadows, "compile": compiled, **time_render(args, device, render)}
            report["rows"].append(row)
            print(f"  {row}", flush=True)
            save(report)
    row = {"measure": "stream", "shadows": True, "compile": args.compile, "views_per_s": time_stream(args, device)}
    report["rows"].append(row)
    save(report)
    return report


def print_table(device: str, report: dict) -> None:
    print(
        f"\n{device}: {report['device']}, torch {report['torch']}, "
        f"{report['image_size'][0]}x{report['image_size'][1]}, "
        f"{report['views_per_scene']} views x {report['scenes_per_batch']} scenes per batch"
    )
    print(f"  host preparation: {report['prepare_scenes_per_s']:.1f} scenes/s per process")
    print(f"  {'measure':<8} {'shadows':<8} {'compile':<8} {'views/s':>10} {'peak GiB':>9}")
    for row in report["rows"]:
        peak = row.get("peak_memory_gib")
        peak_text = f"{peak:9.2f}" if peak is not None else f"{'-':>9}"
        print(
            f"  {row['measure']:<8} {row['shadows']!s:<8} {row['compile']!s:<8} {row['views_per_s']:>10.1f} {peak_text}"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="all", help="cpu, cuda or all (default: every available device)")
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--size", type=lambda t: tuple(int(x) for x in t.split("x")), default=(224, 224))
    parser.add_argument("--batch-size", type=int, help="scenes per batch (default: 1 on CPU, 8 on CUDA)")
    parser.add_argument("--steps", type=int, help="timed batches (default: 1 on CPU, 10 on CUDA)")
    parser.add_argument("--compile", action="store_true", help="also measure with torch.compile")
    parser.add_argument("--chunk", type=int, help="rays per chunk (default: 65536 on CPU, 4194304 on CUDA)")
    parser.add_argument("--prepare-workers", type=int, default=0, help="stream worker processes (default 0)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    RESULTS.mkdir(exist_ok=True)
    for name in devices:
        batch_size, steps, warmup = DEFAULT_LOAD[name]
        args.load = (args.batch_size or batch_size, args.steps or steps, warmup)
        args.rays_per_chunk = args.chunk or DEFAULT_RAYS_PER_CHUNK[name]
        path = RESULTS / f"synth_throughput_{name}.json"
        report = measure(args, torch.device(name), lambda r, path=path: path.write_text(json.dumps(r, indent=1)))
        print_table(name, report)


if __name__ == "__main__":
    main()
