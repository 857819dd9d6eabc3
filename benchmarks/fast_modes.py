"""The opt-in fast modes (iggt.model.fast_mode) against exact mode: speed, and what they cost in accuracy.

speed: the full model (random weights of --preset, random frames; time and memory do not depend
on their values) for each mode at each of --frames at --size on --device. On CUDA: bf16 trunk
autocast, float32 heads, ``torch.inference_mode``, heads --chunk frames at a time, best of
--repeats timed runs after a warm-up (above --big frames: one timed run after a warm-up at 8
frames), peak = ``torch.cuda.max_memory_allocated()`` over the timed runs, weights included. On
the CPU (a check of the script) float32 and no peak memory. floor_s is the trunk's matrix FLOPs
in that mode at 790 TFLOP/s (benchmarks/trunk_floor.py, global layers counted as the mode runs them).

accuracy: the shipped --model (iggt-small) on one engine walk (seed 5, --frames views at --size,
as benchmarks/long_capture.py renders it), in one pass per mode: depth AbsRel (per-map median
scaling) and camera AUC@30 against the engine's exact ground truth, T-mIoU of the instances over
the sequence, and each mode's difference from exact mode's own outputs (depth: mean |relative
difference|; cameras: AUC@30 taking exact mode's cameras as the truth).

Usage:
    python benchmarks/fast_modes.py speed --device cuda --frames 100 --size 518 518
    python benchmarks/fast_modes.py speed --device cuda --frames 100 500 1000 --size 336 504
    python benchmarks/fast_modes.py speed --device cpu --preset tiny --frames 4 --size 42 56 --out /tmp/fm.json
    python benchmarks/fast_modes.py accuracy --device cpu --frames 64      # about 5 min on 2 cores
Prints a table; writes benchmarks/results/fast_modes_<gpu or cpu>.json (speed) or
fast_modes_accuracy_<cpu or gpu>.json (accuracy), or --out. Rows are written as they are measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from gpu_results import RESULTS, gpu_result_path  # noqa: E402
from trunk_floor import DENSE_BF16_FLOPS  # noqa: E402

from iggt.errors import IGGTError  # noqa: E402
from iggt.inference.runner import attention_backend_name, head_chunk_size  # noqa: E402
from iggt.model.config import IGGTConfig  # noqa: E402
from iggt.model.fast_mode import FAST_MODES, FastMode, get_fast_mode  # noqa: E402
from iggt.model.layers.attention_kernels import fa3_machine_reason  # noqa: E402
from iggt.model.layers.key_value_subsampling import grid_indices  # noqa: E402

WALK_SEED = 5  # benchmarks/long_capture.py's walk


def global_layer_flops(config: IGGTConfig, mode: FastMode, frames: int, height: int, width: int) -> tuple[float, float]:
    """(projection and MLP FLOPs, attention FLOPs) of the aggregator's global layers in ``mode``,
    counted as trunk_floor.py does: 24 d^2 a token for the projections and the MLP, 4 x context x d
    a query for QK^T and AV; the matching of token merging counts as attention."""
    dim = config.embed_dim
    grid_h, grid_w = height // config.patch_size, width // config.patch_size
    special = 1 + config.num_register_tokens
    per_frame = special + grid_h * grid_w
    tokens = frames * per_frame
    frame_wise = mode.frame_wise_layers(config.depth)
    layers = config.depth - frame_wise
    dense = config.depth * tokens * 24 * dim**2
    attention = frame_wise * tokens * 4 * per_frame * dim
    if mode.subsamples_keys:
        kept = special + len(grid_indices(grid_h, grid_w, mode.kv_stride, torch.device("cpu")))
        keys = (
            (per_frame if mode.keep_first_frame else kept) + (frames - 1) * kept + (frames if mode.kv_mean_fill else 0)
        )
        return dense, attention + layers * tokens * 4 * keys * dim
    if mode.merges:
        destinations = len(grid_indices(grid_h, grid_w, mode.merge_stride, torch.device("cpu")))
        candidates = grid_h * grid_w - destinations
        kept = per_frame - round(mode.merge_fraction * candidates)
        attending = (per_frame if mode.keep_first_frame else kept) + (frames - 1) * kept
        matching = (frames - 1 if mode.keep_first_frame else frames) * candidates * destinations * 2 * dim
        # The projections run on the attending tokens only (8 of the 24 d^2), the MLP on all.
        dense -= layers * (tokens - attending) * 8 * dim**2
        return dense, attention + layers * (attending * 4 * attending * dim + matching)
    return dense, attention + layers * tokens * 4 * tokens * dim


def trunk_flops(config: IGGTConfig, mode: FastMode, frames: int, height: int, width: int) -> float:
    """Matrix FLOPs of the patch embedding and the aggregator in ``mode``."""
    per_frame = 1 + config.num_register_tokens + (height // config.patch_size) * (width // config.patch_size)
    per_block = frames * per_frame * (24 * config.embed_dim**2 + 4 * per_frame * config.embed_dim)
    return (config.patch_embed_depth + config.depth) * per_block + sum(
        global_layer_flops(config, mode, frames, height, width)
    )


def global_attention_share(config: IGGTConfig, mode: FastMode, frames: int, height: int, width: int) -> float:
    """The global layers' attention FLOPs in ``mode`` over exact mode's."""
    return (
        global_layer_flops(config, mode, frames, height, width)[1]
        / global_layer_flops(config, FastMode(), frames, height, width)[1]
    )


def parse_mode(text: str) -> FastMode:
    """A preset name, or FastMode fields as ``field=value,...`` (e.g. ``kv_stride=2,kv_mean_fill=1``)."""
    if "=" not in text:
        return get_fast_mode(text)
    types = {field.name: field.type for field in dataclasses.fields(FastMode)}
    values = dict(item.split("=", 1) for item in text.split(","))
    convert = {"float": float, "int": int, "bool": lambda v: v.lower() in ("1", "true", "yes")}
    return FastMode(**{key: convert[types[key]](value) for key, value in values.items()})


def time_forward(model, images: torch.Tensor, mode: FastMode, chunk: int) -> float:
    cuda = images.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    model(images, frames_chunk_size=chunk, trunk_dtype=torch.bfloat16 if cuda else torch.float32, fast_mode=mode)
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def speed_row(model, name: str, frames: int, size: tuple[int, int], args) -> dict:
    device, mode = torch.device(args.device), parse_mode(name)
    height, width = size
    chunk = args.chunk or head_chunk_size(frames, height, width)
    row = {"preset": args.preset, "frames": frames, "height": height, "width": width, "mode": name}
    row["frames_chunk_size"] = chunk
    try:
        with torch.inference_mode():
            warm_frames = min(frames, 8) if frames > args.big else frames
            time_forward(model, torch.rand(1, warm_frames, 3, height, width, device=device), mode, chunk)
            images = torch.rand(1, frames, 3, height, width, device=device)
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            repeats = 1 if frames > args.big else args.repeats
            seconds = min(time_forward(model, images, mode, chunk) for _ in range(repeats))
            del images
    except torch.OutOfMemoryError:
        torch.cuda.empty_cache()
        return {**row, "status": "out of memory"}
    floor = trunk_flops(model.config, mode, frames, height, width) / DENSE_BF16_FLOPS
    return {
        **row,
        "status": "ok",
        "seconds": seconds,
        "peak_gb": torch.cuda.max_memory_allocated() / 1e9 if device.type == "cuda" else None,
        "floor_s": floor,
        "floor_ratio": seconds / floor,
        "global_attention_flops_vs_exact": global_attention_share(model.config, mode, frames, height, width),
        "fast_mode": mode.to_dict(),
        "attention": attention_backend_name(model, device, torch.bfloat16),
    }


def speed(args) -> dict:
    from iggt.model.iggt import IGGT

    torch.manual_seed(0)
    model = IGGT.from_preset(args.preset, enable_track=False).to(args.device).eval()
    result = header(args, "speed")
    print(f"{'mode':>6} {'frames':>6} {'H x W':>10} {'seconds':>8} {'peak GB':>8} {'x floor':>7} {'vs exact':>8}")
    for frames in args.frames:
        exact_seconds = None
        for name in args.modes:
            row = speed_row(model, name, frames, tuple(args.size), args)
            if row["status"] == "ok":
                exact_seconds = row["seconds"] if name == "exact" else exact_seconds
                row["speedup_vs_exact"] = exact_seconds / row["seconds"] if exact_seconds else None
            result["rows"].append(row)
            write(result, args.out)
            print(format_speed(row), flush=True)
    return result


def format_speed(row: dict) -> str:
    shape = f"{row['height']} x {row['width']}"
    if row["status"] != "ok":
        return f"{row['mode']:>6} {row['frames']:>6} {shape:>10} {row['status']}"
    peak = f"{row['peak_gb']:8.2f}" if row["peak_gb"] is not None else f"{'-':>8}"
    ratio = f"{row['speedup_vs_exact']:7.2f}x" if row.get("speedup_vs_exact") else f"{'-':>8}"
    timing = f"{row['seconds']:8.3f} {peak} {row['floor_ratio']:7.2f} {ratio}"
    return f"{row['mode']:>6} {row['frames']:>6} {shape:>10} {timing}"


def render_walk(folder: Path, frames: int, size: tuple[int, int]) -> Path:
    from iggt.io.scene_format import write_scene
    from iggt.synth.config import SceneConfig
    from iggt.synth.generate import render_scenes

    scene = next(render_scenes([WALK_SEED], frames, size, SceneConfig(trajectory_weights={"walk": 1.0})))
    return write_scene(scene, folder / "walk")


def accuracy(args) -> dict:
    from iggt.eval.cameras import camera_metrics
    from iggt.eval.depth import depth_metrics
    from iggt.eval.ground_truth import prepare_views
    from iggt.eval.instances import instance_metrics
    from iggt.inference.runner import run_model
    from iggt.instances import InstanceConfig, extract_instances
    from iggt.io.scene_format import read_scene
    from iggt.model.hub import load_model

    frames = args.frames[0]
    with tempfile.TemporaryDirectory() as scratch:
        scene = read_scene(render_walk(Path(scratch), frames, tuple(args.size)))
    model = load_model(args.model)
    images, truth = prepare_views(scene, np.arange(frames), model.config.img_size, model.config.patch_size)
    result = header(args, "accuracy")
    result["settings"] = {"model": args.model, "walk_seed": WALK_SEED, "frames": frames, "size": args.size}
    columns = ("seconds", "AbsRel", "AUC@30", "T-mIoU", "depth vs exact", "AUC vs exact")
    print(" ".join(f"{column:>14}" for column in columns), " mode")
    exact = None
    for name in args.modes:
        start = time.perf_counter()
        predictions = run_model(model, images, device=args.device, fast_mode=parse_mode(name))
        seconds = time.perf_counter() - start
        instances = extract_instances(predictions, InstanceConfig(device=args.device))
        exact = predictions if name == "exact" else exact
        row = {
            "mode": name,
            "frames": frames,
            "height": int(images.shape[-2]),
            "width": int(images.shape[-1]),
            "seconds": seconds,
            "abs_rel": depth_metrics(predictions.depth, truth.depth, truth.valid)["abs_rel"],
            "auc@30": camera_metrics(predictions.extrinsic, truth.extrinsic)["auc@30"],
            "t_miou": instance_metrics(instances.labels, truth.instance_ids)["t_miou"],
            "num_instances": int(instances.num_instances),
            "fast_mode": parse_mode(name).to_dict(),
        }
        if exact is not None:
            row["depth_rel_diff_vs_exact"] = float(np.mean(np.abs(predictions.depth / exact.depth - 1)))
            row["auc@30_vs_exact_cameras"] = camera_metrics(predictions.extrinsic, exact.extrinsic)["auc@30"]
        result["rows"].append(row)
        write(result, args.out)
        values = (seconds, row["abs_rel"], row["auc@30"], row["t_miou"])
        values += (row.get("depth_rel_diff_vs_exact", np.nan), row.get("auc@30_vs_exact_cameras", np.nan))
        print(" ".join(f"{value:14.4f}" for value in values), "", name, flush=True)
    return result


def header(args, part: str) -> dict:
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    if args.out is None:
        stem = "fast_modes" if part == "speed" else "fast_modes_accuracy"
        args.out = gpu_result_path(stem, name) if device.type == "cuda" else RESULTS / f"{stem}_cpu.json"
    return {
        "device": name,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "protocol": __doc__.split("\n\n")[1 if part == "speed" else 2].replace("\n", " "),
        "rows": [],
    }


def write(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("speed", "accuracy"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--frames", type=int, nargs="+", help="speed: 100; accuracy: 64 (its first value)")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="speed: 518 518; accuracy: 168 224")
    parser.add_argument(
        "--modes",
        nargs="+",
        help="preset names or FastMode field=value,... specs; exact first: the others are compared with it "
        "(default: every preset that runs on --device; fp8 needs FlashAttention-3 on a Hopper GPU)",
    )
    parser.add_argument("--preset", default="large", help="speed: the random-weight preset")
    parser.add_argument("--model", default="iggt-small", help="accuracy: the trained model")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big", type=int, default=200, help="speed: above this many frames, one timed run")
    parser.add_argument("--chunk", type=int, help="frames per head pass (default: the runner's head_chunk_size)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.frames = args.frames or ([100] if args.part == "speed" else [64])
    args.size = args.size or ([518, 518] if args.part == "speed" else [168, 224])
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device is available; pass --device cpu to check the script")
    if args.modes is None:
        fp8_runs = fa3_machine_reason(torch.device(args.device)) is None
        args.modes = [name for name, mode in FAST_MODES.items() if fp8_runs or not mode.fp8_attention]
    try:
        (speed if args.part == "speed" else accuracy)(args)
    except IGGTError as error:  # e.g. fp8 asked where FlashAttention-3 cannot run: its one line
        raise SystemExit(str(error)) from None


if __name__ == "__main__":
    main()
