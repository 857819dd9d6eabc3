"""Long captures: time and peak memory against frame count, windowed against one pass.

Renders one engine walk-through (seed 5, 128 frames at 168 x 224 by default) and reconstructs
its first S frames for each S in --frames: windowed (--window, --overlap) always, in one pass
when S <= --one-pass-max. Each run is its own process, so its peak resident memory (ru_maxrss:
model, network, clustering, outputs) is its own. Accuracy on the engine's exact ground truth:
camera AUC@30 over all frame pairs, ATE (RMSE of the camera centres after a Sim(3) fit to the
true ones, in units of the true trajectory's extent), depth AbsRel (per-map median scaling),
T-mIoU / T-SR / ID consistency of the instances over the whole sequence.

Usage:
    python benchmarks/long_capture.py                        # iggt-small on the CPU, 32/64/128 frames
    python benchmarks/long_capture.py --frames 8 12 --window 6 --overlap 2 --model tiny.safetensors \
        --size 42 56 --out /tmp/long.json                    # a quick check of the script
Prints a table and writes benchmarks/results/long_capture_<device>.json (or --out).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results"
SEED = 5


def render(folder: Path, frames: int, size: tuple[int, int]) -> Path:
    from iggt.io.scene_format import write_scene
    from iggt.synth.config import SceneConfig
    from iggt.synth.generate import render_scenes

    scene = next(render_scenes([SEED], frames, size, SceneConfig(trajectory_weights={"walk": 1.0})))
    return write_scene(scene, folder / "walk")


def trajectory_error(predicted: np.ndarray, truth: np.ndarray) -> float:
    """RMSE of (S, 3, 4) predicted camera centres after a Sim(3) fit to the true ones, over the
    true centres' extent (largest distance from their mean)."""
    from iggt.geometry.similarity import umeyama

    def centres(extrinsic):
        rotation, translation = extrinsic[:, :, :3].astype(np.float64), extrinsic[:, :, 3].astype(np.float64)
        return -np.einsum("sji,sj->si", rotation, translation)

    source, target = centres(predicted), centres(truth)
    fitted = umeyama(source, target).apply(source)
    extent = np.linalg.norm(target - target.mean(0), axis=1).max()
    return float(np.sqrt(((fitted - target) ** 2).sum(1).mean()) / max(extent, 1e-12))


def child(args: argparse.Namespace) -> None:
    """One run in this process; prints its row as JSON on the last line of stdout."""
    from iggt.eval.cameras import camera_metrics
    from iggt.eval.depth import depth_metrics
    from iggt.eval.ground_truth import prepare_views
    from iggt.eval.instances import instance_metrics
    from iggt.inference.runner import run_model
    from iggt.inference.windowed import run_windowed
    from iggt.inference.windows import plan_windows
    from iggt.instances import InstanceConfig, extract_instances
    from iggt.io.scene_format import read_scene
    from iggt.model.hub import load_model

    scene = read_scene(args.scene)
    model = load_model(args.model)
    images, truth = prepare_views(scene, np.arange(args.count), model.config.img_size, model.config.patch_size)
    config = InstanceConfig(device=args.device)
    start = time.perf_counter()
    if args.mode == "windowed":
        plan = plan_windows(args.count, args.window, args.overlap)
        run = run_windowed(model, images, plan, config, device=args.device)
        predictions, instances, windows = run.predictions, run.instances, len(plan.windows)
    else:
        predictions = run_model(model, images, device=args.device)
        instances, windows = extract_instances(predictions, config), 1
    seconds = time.perf_counter() - start
    row = {
        "frames": args.count,
        "mode": args.mode,
        "windows": windows,
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "auc@30": camera_metrics(predictions.extrinsic, truth.extrinsic)["auc@30"],
        "ate_rel": trajectory_error(predictions.extrinsic, truth.extrinsic),
        "abs_rel": depth_metrics(predictions.depth, truth.depth, truth.valid)["abs_rel"],
        **{k: v for k, v in instance_metrics(instances.labels, truth.instance_ids).items() if k != "num_matched"},
        "num_instances": int(instances.num_instances),
    }
    if args.cuda_peak and torch.cuda.is_available():
        row["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(row))


def run_child(scene: Path, count: int, mode: str, args: argparse.Namespace) -> dict:
    command = [
        sys.executable, __file__, "--child", "--scene", str(scene), "--count", str(count), "--mode", mode,
        "--model", args.model, "--device", args.device, "--window", str(args.window), "--overlap", str(args.overlap),
        "--cuda-peak",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    if done.returncode:
        raise SystemExit(f"{count} frames, {mode}: the run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


COLUMNS = (
    "frames",
    "mode",
    "windows",
    "seconds",
    "peak_rss_mb",
    "auc@30",
    "ate_rel",
    "abs_rel",
    "t_miou",
    "t_sr",
    "id_consistency",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--overlap", type=int, default=4)
    parser.add_argument("--one-pass-max", type=int, default=64, help="largest frame count also run in one pass")
    parser.add_argument("--size", type=int, nargs=2, default=[168, 224], metavar=("H", "W"))
    parser.add_argument("--model", default="iggt-small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scene", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--cuda-peak", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    rows = []
    print(" ".join(f"{c:>14}" for c in COLUMNS))
    with tempfile.TemporaryDirectory(prefix="iggt-long-") as scratch:
        scene = render(Path(scratch), max(args.frames), tuple(args.size))
        for count in sorted(args.frames):
            modes = ["windowed"] + (["one pass"] if count <= args.one_pass_max else [])
            for mode in modes:
                row = run_child(scene, count, mode, args)
                rows.append(row)
                print(" ".join(f"{row[c]:>14.4g}" if isinstance(row[c], float) else f"{row[c]:>14}" for c in COLUMNS))
    result = {
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0],
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": {
            "model": args.model,
            "seed": SEED,
            "trajectory": "walk",
            "size": args.size,
            "window": args.window,
            "overlap": args.overlap,
            "frames": sorted(args.frames),
            "one_pass_max": args.one_pass_max,
        },  # fmt: skip
        "rows": rows,
    }
    out = args.out or RESULTS / f"long_capture_{'cpu' if args.device == 'cpu' else 'cuda'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
