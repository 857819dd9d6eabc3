"""`iggt synth`: render procedural multi-view scenes with exact ground truth into the scene format."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from iggt.cli.options import add_device_option
from iggt.device import resolve_device
from iggt.errors import ConfigError, InputError
from iggt.io.output_dir import claim_output_dir, recover_leftovers, writing_into
from iggt.io.scene_format import DEPTH_ENCODINGS, IMAGE_FORMATS, write_scene
from iggt.synth.benchmarks import BENCHMARKS, get_benchmark
from iggt.synth.config import RenderConfig, SceneConfig, check_image_size
from iggt.synth.generate import GENERATOR_VERSION, render_scenes
from iggt.synth.seeds import derive_training_seed

_DEFAULTS = {"scenes": 8, "views": 8, "size": (224, 224), "seed": 0}


def _image_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size must be HxW like 224x224, got {text!r}") from exc
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return height, width


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="folder to write scene_NNNNNN/ folders into")
    parser.add_argument("--scenes", type=int, help=f"number of scenes (default {_DEFAULTS['scenes']})")
    parser.add_argument("--views", type=int, help=f"views per scene (default {_DEFAULTS['views']})")
    parser.add_argument("--size", type=_image_size, help="image size HxW (default 224x224)")
    parser.add_argument("--seed", type=int, help="base seed; scene seeds derive from it (default 0)")
    parser.add_argument(
        "--benchmark",
        choices=sorted(BENCHMARKS),
        help="write a named held-out evaluation set (fixes scenes, views, size and seeds)",
    )
    add_device_option(parser, default="cpu", role="rendering device")
    parser.add_argument("--scenes-per-batch", type=int, default=4, help="scenes rendered together (default 4)")
    parser.add_argument("--supersample", type=int, default=1, help="odd k: k x k RGB rays per pixel (default 1)")
    parser.add_argument("--no-shadows", action="store_true", help="skip shadow rays (faster)")
    parser.add_argument(
        "--meshes", type=int, default=0, help="low-poly triangle-mesh objects per scene: rocks, crystals (default 0)"
    )
    parser.add_argument("--depth-encoding", choices=DEPTH_ENCODINGS, default="png16", help="png16 (mm) or npy (exact)")
    parser.add_argument("--image-format", choices=IMAGE_FORMATS, default="png", help="png (lossless) or jpg")
    parser.add_argument("--overwrite", action="store_true", help="replace scene folders that already exist")


def _plan(args: argparse.Namespace) -> tuple[list[int], int, tuple[int, int], str]:
    """Seeds, views, image size and a description of where the seeds come from."""
    if args.meshes < 0:
        raise ConfigError(f"--meshes must be >= 0, got {args.meshes}")
    if args.scenes_per_batch < 1:
        raise ConfigError(f"--scenes-per-batch must be >= 1, got {args.scenes_per_batch}")
    if args.size is not None:
        check_image_size(args.size)
    if args.benchmark:
        given = [name for name in _DEFAULTS if getattr(args, name) is not None] + (["meshes"] if args.meshes else [])
        if given:
            raise ConfigError(f"--benchmark fixes {', '.join('--' + g for g in given)}; drop them")
        benchmark = get_benchmark(args.benchmark)
        return benchmark.seeds(), benchmark.num_views, benchmark.image_size, f"benchmark {benchmark.name}"
    values = {
        name: default if getattr(args, name) is None else getattr(args, name) for name, default in _DEFAULTS.items()
    }
    if values["scenes"] < 1 or values["views"] < 1 or values["seed"] < 0:
        raise ConfigError("--scenes and --views must be >= 1 and --seed >= 0")
    seeds = [derive_training_seed(values["seed"], i) for i in range(values["scenes"])]
    return seeds, values["views"], values["size"], f"base seed {values['seed']}"


def _write_index(out: Path, args, seeds: list[int], views: int, size: tuple[int, int], names: list[str]) -> None:
    index = {
        "generator": "iggt.synth",
        "generator_version": GENERATOR_VERSION,
        "benchmark": args.benchmark,
        "num_views": views,
        "image_size": list(size),
        "mesh_objects": args.meshes,
        "scenes": [{"name": name, "seed": seed} for name, seed in zip(names, seeds, strict=True)],
    }
    temporary = out / ".dataset.json.partial"
    temporary.write_text(json.dumps(index, indent=1))
    os.replace(temporary, out / "dataset.json")


def run(args: argparse.Namespace) -> int:
    seeds, views, size, origin = _plan(args)
    device = resolve_device(args.device)
    names = [f"scene_{i:06d}" for i in range(len(seeds))]
    # Checked and locked before rendering; each scene folder is replaced on its own, never --out.
    with claim_output_dir(args.out, replaces_folder=False) as out, writing_into(args.out):
        for name in names:
            recover_leftovers(out / name)
        return _render_and_write(args, seeds, views, size, origin, device, names)


def _render_and_write(args, seeds: list[int], views: int, size, origin: str, device, names: list[str]) -> int:
    render_config = RenderConfig(supersample=args.supersample, shadows=not args.no_shadows)
    existing = [name for name in names if (args.out / name).exists()]
    if existing and not args.overwrite:
        raise InputError(f"{args.out / existing[0]} already exists; pass --overwrite or choose another --out")
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    instance_counts, valid_fractions, trajectories = [], [], Counter()
    depth_range = [np.inf, 0.0]
    scene_config = SceneConfig(mesh_objects_range=(args.meshes, args.meshes))
    scenes = render_scenes(seeds, views, size, scene_config, render_config, device, args.scenes_per_batch)
    for name, scene in tqdm(zip(names, scenes, strict=True), total=len(seeds), desc="iggt synth", unit="scene"):
        write_scene(
            scene, args.out / name, depth_encoding=args.depth_encoding, image_format=args.image_format, overwrite=True
        )
        instance_counts.append(len(np.setdiff1d(np.unique(scene.instance_ids), [0])))
        valid = scene.depth > 0
        valid_fractions.append(valid.mean())
        if valid.any():
            depth_range = [min(depth_range[0], scene.depth[valid].min()), max(depth_range[1], scene.depth.max())]
        trajectories[scene.metadata["trajectory"]] += 1
    _write_index(args.out, args, seeds, views, size, names)
    elapsed = time.perf_counter() - start
    height, width = size
    print(
        f"Wrote {len(seeds)} scenes x {views} views at {height}x{width} ({origin}) to {args.out} in {elapsed:.1f} s "
        f"on {device} ({len(seeds) * views / elapsed:.1f} views/s including writing). Visible instances per scene: "
        f"min {min(instance_counts)}, mean {np.mean(instance_counts):.1f}, max {max(instance_counts)}; valid depth "
        f"{100 * np.mean(valid_fractions):.1f}% of pixels, {depth_range[0]:.2f}-{depth_range[1]:.2f} m, stored as "
        f"{args.depth_encoding}; trajectories {dict(sorted(trajectories.items()))}. Read them with "
        f"iggt.io.scene_format.read_scene; the index is {args.out / 'dataset.json'}."
    )
    return 0
