"""Long captures: time and peak memory against frame count, windowed against one pass.

Renders one engine walk-through (seed 5, 128 frames at 168 x 224 by default) and reconstructs
its first S frames for each S in --frames: windowed (--window, --overlap) always, in one pass
when S <= --one-pass-max. Each run is its own process, so its peak resident memory (ru_maxrss:
model, network, clustering, outputs) is its own. Accuracy on the engine's exact ground truth:
camera AUC@30 over all frame pairs, ATE (RMSE of the camera centres after a Sim(3) fit to the
true ones, in units of the true trajectory's extent), depth AbsRel (per-map median scaling),
T-mIoU / T-SR / ID consistency of the instances over the whole sequence. Drift (no loop
closure): the ATE of the first L frames for L at every tenth of the sequence, and the end
point's error after the fit over all frames, in units of the true trajectory's extent; each row
keeps its predicted cameras.
Peak memory is read right after the run (before the metrics).

--scale: one windowed run of synthetic frames with random weights (time and memory only; see
:func:`scale`), recording at each count of --frames.
--sweep K:M ... runs the --sweep-frames sequence with each window / overlap. --stand-in runs the
windowed pipeline with a stand-in for the network (fixed synthetic window outputs), so its memory
growth per frame is the pipeline's alone (alignment, clustering, merge, linking).

Usage:
    python benchmarks/long_capture.py --frames 50 100 200 --one-pass-max 200 --sweep 16:2 32:4 32:8 \
        --sweep-frames 100                                   # iggt-small on the CPU (about 25 min)
    python benchmarks/long_capture.py --frames 1000 --one-pass-max 0 --out long_1000.json   # 1,000 frames
    python benchmarks/long_capture.py --stand-in --frames 32 96 --out /tmp/pipeline_memory.json
    python benchmarks/long_capture.py --scale --device cuda --preset large --size 336 504 --window 64 \
        --overlap 8 --frames 500 1000 2000 5000  # the H200: benchmarks/results/long_capture_h200.json
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


def render(folder: Path, frames: int, size: tuple[int, int], device: str = "cpu") -> Path:
    from iggt.io.scene_format import write_scene
    from iggt.synth.config import SceneConfig
    from iggt.synth.generate import render_scenes

    walk = SceneConfig(trajectory_weights={"walk": 1.0})
    scene = next(render_scenes([SEED], frames, size, walk, device=device))
    return write_scene(scene, folder / "walk")


class AnonymousPeak:
    """The most anonymous resident memory (``RssAnon`` of /proc/self/status: the heap, not the
    pages of memory-mapped files, which the kernel can write back and drop) seen by a thread
    sampling every ``interval`` seconds; ru_maxrss counts the mapped result's pages too."""

    def __init__(self, interval: float = 0.05):
        import threading

        self.peak_mb = self.now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(interval,), daemon=True)
        self._thread.start()

    @staticmethod
    def now(pid: int | str = "self") -> float:
        """``RssAnon`` of process ``pid`` in MB (NaN where the kernel does not report it)."""
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def _sample(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.peak_mb = max(self.peak_mb, self.now())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak_mb, self.now())


def trajectory_error(predicted: np.ndarray, truth: np.ndarray) -> float:
    """RMSE of (S, 3, 4) predicted camera centres after a Sim(3) fit to the true ones, over the
    true centres' extent (largest distance from their mean)."""
    from iggt.geometry.similarity import umeyama

    source, target = _centres(predicted), _centres(truth)
    fitted = umeyama(source, target).apply(source)
    extent = np.linalg.norm(target - target.mean(0), axis=1).max()
    return float(np.sqrt(((fitted - target) ** 2).sum(1).mean()) / max(extent, 1e-12))


def drift(predicted: np.ndarray, truth: np.ndarray) -> dict:
    """How camera error grows along the sequence (no loop closure): the ATE of the first L frames
    (each prefix fitted on its own) for L at every tenth of S, and the end point's centre error
    after the fit over all frames, both over the true trajectory's extent."""
    from iggt.geometry.similarity import umeyama

    count = len(predicted)
    lengths = sorted({max(3, round(count * k / 10)) for k in range(1, 11)})
    source, target = _centres(predicted), _centres(truth)
    fitted = umeyama(source, target).apply(source)
    extent = np.linalg.norm(target - target.mean(0), axis=1).max()
    return {
        "ate_by_length": {str(n): trajectory_error(predicted[:n], truth[:n]) for n in lengths},
        "end_point_rel": float(np.linalg.norm(fitted[-1] - target[-1]) / max(extent, 1e-12)),
    }


def _centres(extrinsic: np.ndarray) -> np.ndarray:
    rotation, translation = extrinsic[:, :, :3].astype(np.float64), extrinsic[:, :, 3].astype(np.float64)
    return -np.einsum("sji,sj->si", rotation, translation)


def child(args: argparse.Namespace) -> None:
    """One run in this process; prints its row as JSON on the last line of stdout."""
    if args.stand_in:
        return stand_in_child(args)
    from iggt.eval.cameras import camera_metrics
    from iggt.eval.depth import depth_metrics
    from iggt.eval.ground_truth import prepare_views
    from iggt.eval.instances import instance_metrics
    from iggt.inference.runner import run_model
    from iggt.inference.windowed import run_windowed
    from iggt.inference.windows import plan_windows
    from iggt.instances import InstanceConfig, extract_instances
    from iggt.io.scene_format import read_manifest, read_scene
    from iggt.model.hub import load_model

    scene = read_scene(args.scene, frames=read_manifest(args.scene).frames[: args.count])
    model = load_model(args.model)
    images, truth = prepare_views(scene, np.arange(args.count), model.config.img_size, model.config.patch_size)
    del scene
    config = InstanceConfig(device=args.device)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    if args.mode == "windowed":
        plan = plan_windows(args.count, args.window, args.overlap)
        run = run_windowed(model, images, plan, config, device=args.device)
        predictions, instances, windows, unconfirmed = run.predictions, run.instances, len(plan.windows), run.notes
    else:
        predictions = run_model(model, images, device=args.device)
        instances, windows, unconfirmed = extract_instances(predictions, config), 1, []
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row = {
        "frames": args.count,
        "mode": args.mode,
        "window": args.window if args.mode == "windowed" else args.count,
        "overlap": args.overlap if args.mode == "windowed" else 0,
        "windows": windows,
        "unconfirmed_fits": unconfirmed,
        "seconds": seconds,
        "peak_rss_mb": peak,
        "rss_before_run_mb": before,
        "auc@30": camera_metrics(predictions.extrinsic, truth.extrinsic)["auc@30"],
        "ate_rel": trajectory_error(predictions.extrinsic, truth.extrinsic),
        **drift(predictions.extrinsic, truth.extrinsic),
        "abs_rel": depth_metrics(predictions.depth, truth.depth, truth.valid)["abs_rel"],
        **{k: v for k, v in instance_metrics(instances.labels, truth.instance_ids).items() if k != "num_matched"},
        "num_instances": int(instances.num_instances),
        "extrinsic": np.round(predictions.extrinsic, 5).tolist(),
    }
    if args.cuda_peak and torch.cuda.is_available():
        row["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(row))


def stepped_wall(count: int, height: int, width: int) -> dict[str, np.ndarray]:
    """A fixed scene as ``count`` views of one camera would see it: a wall in four depth steps,
    one object per step (by the instance feature). Window outputs of it align exactly."""
    rows, columns = np.mgrid[0:height, 0:width]
    band = columns * 4 // width
    depth = (2.0 + band).astype(np.float32)
    rays = np.stack([(columns - width / 2) / width, (rows - height / 2) / width, np.ones_like(depth)], -1)
    return {
        "depth": np.broadcast_to(depth, (count, height, width)).copy(),
        "depth_conf": np.ones((count, height, width), np.float32),
        "world_points": np.broadcast_to((rays * depth[..., None]).astype(np.float32), (count, height, width, 3)).copy(),
        "world_points_conf": np.ones((count, height, width), np.float32),
        "instance_feat": np.broadcast_to(np.eye(8, dtype=np.float32)[band + 1], (count, height, width, 8)).copy(),
    }


def stand_in_child(args: argparse.Namespace) -> None:
    """The windowed pipeline without the network: each window's outputs are :func:`stepped_wall`,
    so the alignment succeeds and the memory measured is the pipeline's own."""
    from iggt.inference.windowed import reconstruct_windows
    from iggt.inference.windows import plan_windows
    from iggt.instances import InstanceConfig
    from iggt.structures.predictions import Predictions

    height, width = args.size
    intrinsic = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], np.float32)

    def predict(frames: range) -> Predictions:
        count = len(frames)
        return Predictions(
            images=np.zeros((count, height, width, 3), np.float32),
            extrinsic=np.tile(np.eye(3, 4, dtype=np.float32), (count, 1, 1)),
            intrinsic=np.tile(intrinsic, (count, 1, 1)),
            pose_enc=np.zeros((count, 9), np.float32),
            **stepped_wall(count, height, width),
        )

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    anonymous = AnonymousPeak()
    start = time.perf_counter()
    with _store(args.store) as store:
        run = reconstruct_windows(
            predict, plan_windows(args.count, args.window, args.overlap), InstanceConfig(device="cpu"), store=store
        )
        seconds = time.perf_counter() - start
    row = {
        "frames": args.count,
        "mode": "stand-in",
        "window": args.window,
        "overlap": args.overlap,
        "windows": len(run.plan.windows),
        "store": "disk" if args.store else "memory",
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_run_mb": before,
        "peak_anon_mb": anonymous.stop(),
        "num_instances": int(run.instances.num_instances),
    }
    print(json.dumps(row))


def scale(args: argparse.Namespace) -> None:
    """One windowed run of max(--frames) synthetic frames with a randomly initialised --preset:
    time, peak GPU memory and resident memory each time the run passes a count of --frames, then
    after the final pass (linking over the capture). Random weights give meaningless point maps,
    so the points, depth and features each window returns are replaced by :func:`stepped_wall`
    after the network (the fits then succeed); the network, alignment, clustering, merge and
    linking run as in any capture. Frames are made on the device from their index (a texture
    shifted by 3 pixels a frame), so shared frames are the same images in both windows."""
    from dataclasses import replace

    from iggt.device import resolve_device
    from iggt.inference.runner import run_model
    from iggt.inference.windowed import reconstruct_windows
    from iggt.inference.windows import plan_windows
    from iggt.instances import InstanceConfig
    from iggt.model.iggt import IGGT

    device = resolve_device(args.device)
    torch.manual_seed(0)
    with device:  # the large preset's 1.3 B random weights are drawn on the device, not the CPU
        model = IGGT.from_preset(args.preset).eval()
    height, width = args.size
    counts = sorted(args.frames)
    plan = plan_windows(counts[-1], args.window, args.overlap)
    texture = torch.rand(3, height, width + 3 * counts[-1], generator=torch.Generator().manual_seed(0)).to(device)
    wall = stepped_wall(args.window, height, width)

    def predict(frames: range):
        images = torch.stack([texture[:, :, 3 * f : 3 * f + width] for f in frames])
        output = run_model(model, images, device, chunk_size=args.chunk)
        return replace(output, **{key: value[: len(frames)] for key, value in wall.items()})

    cuda = device.type == "cuda"
    rows: list[dict] = []
    pending = list(counts)
    anonymous = AnonymousPeak()
    store_context = _store(args.store)
    store = store_context.__enter__()
    start = time.perf_counter()
    out = args.out or _scale_path(device)
    out.parent.mkdir(parents=True, exist_ok=True)

    def record(frames: int, stage: str, windows: int) -> None:
        row = {
            "frames": frames,
            "stage": stage,
            "windows": windows,
            "seconds": time.perf_counter() - start,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_anon_mb": anonymous.peak_mb,
            "store_gb": _folder_gb(store),
            **({"peak_cuda_mb": torch.cuda.max_memory_allocated(device) / 2**20} if cuda else {}),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        settings = {
            "preset": args.preset, "weights": "random (seed 0)", "size": args.size, "window": args.window,
            "overlap": args.overlap, "chunk": args.chunk, "frames": counts,
            "store": "disk (memory-mapped .npy)" if args.store else "memory",
        }  # fmt: skip
        device_name = torch.cuda.get_device_name(device) if cuda else "cpu"
        result = {"device": device_name, "torch": torch.__version__, "settings": settings, "rows": rows}
        out.write_text(
            json.dumps({**result, "date": datetime.datetime.now(datetime.timezone.utc).isoformat()}, indent=1)
        )

    def on_window(index: int) -> None:
        done = plan.windows[index].stop
        while pending and done >= pending[0]:
            record(pending.pop(0), "windows", index + 1)
        if args.windows_only and not pending:
            raise _WindowsDone

    try:
        reconstruct_windows(
            predict, plan, InstanceConfig(device=str(device)), on_window=on_window, store=store, prefetch=cuda
        )
        record(counts[-1], "final pass", len(plan.windows))
    except _WindowsDone:
        pass
    finally:
        store_context.__exit__(None, None, None)
    print(f"wrote {out}")


def _store(parent: Path | None):
    """A fresh folder under ``parent`` for the result's memory maps, removed afterwards; None: in memory."""
    import contextlib

    if parent is None:
        return contextlib.nullcontext(None)
    parent.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix="iggt-store-", dir=parent)


def _folder_gb(folder: str | None) -> float:
    """Bytes of the files in ``folder`` as allocated on disk (memory maps are sparse until written), in GB."""
    if folder is None:
        return 0.0
    return sum(f.stat().st_blocks * 512 for f in Path(folder).iterdir()) / 1e9


class _WindowsDone(Exception):
    """--windows-only: the last window is merged; the final pass is not run."""


def _scale_path(device: torch.device) -> Path:
    if device.type != "cuda":
        return RESULTS / "long_capture_scale_cpu.json"
    sys.path.insert(0, str(Path(__file__).parent))
    from gpu_results import gpu_result_path

    return gpu_result_path("long_capture", torch.cuda.get_device_name(device))


def run_child(scene: Path | None, count: int, mode: str, args: argparse.Namespace, window: int, overlap: int) -> dict:
    command = [
        sys.executable, __file__, "--child", "--scene", str(scene), "--count", str(count), "--mode", mode,
        "--model", args.model, "--device", args.device, "--window", str(window), "--overlap", str(overlap),
        "--size", *map(str, args.size), "--cuda-peak", *(["--stand-in"] if args.stand_in else []),
        *(["--store", str(args.store)] if args.store else []),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    if done.returncode:
        print(f"{count} frames, {mode}, window {window} overlap {overlap}: the run failed:\n{done.stderr[-2000:]}")
        # The error's last line only: a traceback would put this machine's paths in the results.
        error = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
        return {"frames": count, "mode": mode, "window": window, "overlap": overlap, "error": error}
    return json.loads(done.stdout.strip().splitlines()[-1])


COLUMNS = (
    "frames",
    "mode",
    "window",
    "overlap",
    "seconds",
    "peak_rss_mb",
    "auc@30",
    "ate_rel",
    "end_point_rel",
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
    parser.add_argument("--one-pass-only", action="store_true", help="no windowed runs of --frames")
    parser.add_argument("--sweep", nargs="*", default=[], metavar="K:M", help="window:overlap settings to compare")
    parser.add_argument("--sweep-frames", type=int, default=100, help="frames of the --sweep runs")
    parser.add_argument("--stand-in", action="store_true", help="the pipeline's memory without the network")
    parser.add_argument("--scale", action="store_true", help="one run of synthetic frames, random weights")
    parser.add_argument("--preset", default="large", help="--scale: the preset (random weights)")
    parser.add_argument("--chunk", type=int, help="--scale: frames per dense-head pass")
    parser.add_argument(
        "--windows-only", action="store_true", help="--scale: stop after the last window (no final linking pass)"
    )
    parser.add_argument(
        "--store", type=Path, help="--scale / --stand-in: write the result as memory maps in a folder under this one"
    )
    parser.add_argument("--size", type=int, nargs=2, default=[168, 224], metavar=("H", "W"))
    parser.add_argument("--model", default="iggt-small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--walk", type=Path, help="a walk this script rendered before (its frames), not rendered again")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scene", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--cuda-peak", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if args.scale:
        return scale(args)
    rows: list[dict] = []
    print(" ".join(f"{c:>14}" for c in COLUMNS))

    out = args.out or RESULTS / f"long_capture_{'cpu' if args.device == 'cpu' else 'cuda'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    def record(row: dict) -> None:
        """Print the row and rewrite the results with it: a run cut short keeps the rows it finished."""
        rows.append(row)
        print(" ".join(_cell(row.get(c, "-")) for c in COLUMNS), flush=True)
        out.write_text(json.dumps(results(args, rows), indent=1))

    with tempfile.TemporaryDirectory(prefix="iggt-long-") as scratch:
        counts = sorted(args.frames) + ([args.sweep_frames] if args.sweep else [])
        walk = None if args.stand_in else args.walk
        if walk is None and not args.stand_in:
            walk = render(Path(scratch), max(counts), tuple(args.size), args.device)
        scene = walk
        for count in sorted(args.frames):
            if not args.one_pass_only:
                record(run_child(scene, count, "windowed", args, args.window, args.overlap))
            if count <= args.one_pass_max and not args.stand_in:
                record(run_child(scene, count, "one pass", args, args.window, args.overlap))
        for setting in args.sweep:
            window, overlap = map(int, setting.split(":"))
            record(run_child(scene, args.sweep_frames, "windowed", args, window, overlap))
    print(f"wrote {out}")


def results(args: argparse.Namespace, rows: list[dict]) -> dict:
    return {
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
            "sweep": args.sweep,
            "sweep_frames": args.sweep_frames,
            "stand_in": args.stand_in,
            "store": "disk (memory-mapped .npy)" if args.store else "memory",
        },  # fmt: skip
        "rows": rows,
    }


def _cell(value) -> str:
    return f"{value:>14.4g}" if isinstance(value, float) else f"{value!s:>14}"


if __name__ == "__main__":
    main()
