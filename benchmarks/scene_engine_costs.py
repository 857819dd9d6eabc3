"""What each widened randomisation of the scene engine costs: render time of lights, gloss, textures,
and time of every camera effect, against the default engine.

Renders the same prepared scenes under each scene config (rendering only: layouts and cameras
are drawn once, untimed), then times each camera effect alone (probability 1) on a training
batch of those scenes. Eager rendering; the compiled path is not timed here.

Usage:
    python benchmarks/scene_engine_costs.py --device cpu --size 96 128 --scenes 4 --views 4
Prints a table and writes benchmarks/results/scene_engine_costs_<device>.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path

import torch

from iggt.data.batch import build_training_batch
from iggt.synth.camera_effects import CameraEffectsConfig, apply_camera_effects, sample_effects
from iggt.synth.config import RenderConfig, SceneConfig
from iggt.synth.generate import render_prepared
from iggt.synth.prepare import SceneRequest, prepare_scene

RESULTS = Path(__file__).parent / "results"
SCENE_CONFIGS = {
    "default (1 white light, matte)": SceneConfig(),
    "3 lights, 2700-8000 K": SceneConfig(lights_range=(3, 3), light_kelvin_range=(2700.0, 8000.0)),
    "gloss on every instance": SceneConfig(specular_probability=1.0),
    "richer textures on every instance": SceneConfig(rich_texture_probability=1.0),
    "3 lights + gloss + richer textures": SceneConfig(
        lights_range=(3, 3), specular_probability=1.0, rich_texture_probability=1.0
    ),
}
EFFECTS = ("exposure", "white_balance", "vignetting", "motion_blur", "noise", "jpeg", "lens_distortion")


def fastest(tasks: dict[str, object], device: torch.device, repeats: int) -> dict[str, float]:
    """Fastest seconds of each task over ``repeats`` rounds after one warm-up round.

    Rounds run every task in turn, and the minimum is kept: on a CPU shared with other work,
    a slow run says how busy the machine was, not what the task costs.
    """
    best = dict.fromkeys(tasks, float("inf"))
    for round_index in range(repeats + 1):
        for name, task in tasks.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            task()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if round_index > 0:
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, nargs=2, default=(96, 128))
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds of renders (3x for effects)")
    args = parser.parse_args()
    device, size = torch.device(args.device), tuple(args.size)
    seeds = list(range(100, 100 + args.scenes))
    render = RenderConfig(rays_per_chunk=1 << 16)
    renders = {}
    for name, scene_config in SCENE_CONFIGS.items():
        prepared = [prepare_scene(SceneRequest(seed, args.views, size), scene_config) for seed in seeds]
        renders[f"render: {name}"] = lambda p=prepared: render_prepared(p, size, render, device)
    prepared = [prepare_scene(SceneRequest(seed, args.views, size), SceneConfig()) for seed in seeds]
    views = render_prepared(prepared, size, render, device)
    cameras = [
        torch.stack([torch.as_tensor(getattr(c, k), dtype=torch.float32) for _, c in prepared]).to(device)
        for k in ("intrinsic", "extrinsic")
    ]
    batch = build_training_batch(views.rgb, views.depth, *cameras, views.instance_ids, views.class_ids)
    effects = {}
    for effect in ("none (8-bit quantisation only)", *EFFECTS):
        probabilities = {f"{e}_probability": float(e == effect) for e in EFFECTS}
        parameters = sample_effects(CameraEffectsConfig(**probabilities), seeds, args.views)
        effects[f"effect: {effect}"] = lambda p=parameters: apply_camera_effects(batch, p)
    parameters = sample_effects(CameraEffectsConfig.realistic(), seeds, args.views)
    effects["effect: realistic mix"] = lambda: apply_camera_effects(batch, parameters)
    seconds = fastest(renders, device, args.repeats) | fastest(effects, device, 3 * args.repeats)
    rows = [{"what": name, "seconds": value} for name, value in seconds.items()]
    base = rows[0]["seconds"]
    print(
        f"{args.scenes} scenes x {args.views} views at {size[0]}x{size[1]} on {args.device}, "
        f"{torch.get_num_threads()} threads"
    )
    for row in rows:
        row["relative_to_default_render"] = row["seconds"] / base
        print(
            f"{row['what']:<45} {row['seconds'] * 1000:9.1f} ms  "
            f"{row['relative_to_default_render']:6.2f} x default render"
        )
    RESULTS.mkdir(exist_ok=True)
    record = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": args.device if device.type != "cuda" else torch.cuda.get_device_name(device),
        "processor": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "scenes": args.scenes,
        "views": args.views,
        "image_size": list(size),
        "rows": rows,
    }
    (RESULTS / f"scene_engine_costs_{device.type}.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
