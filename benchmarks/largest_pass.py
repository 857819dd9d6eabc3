"""The most frames one exact pass of `large` holds on this GPU, at each image size, from its measured peaks.

The exact forward's peak memory grows linearly with the frames of a pass (the dense heads see a
fixed chunk of frames; attention keeps no score matrix), so a few passes short enough to run
in minutes fix the line: peak = intercept + slope * frames. The largest pass is where that line
meets the memory the caching allocator can reach (the device's free memory when the process
starts), read from the reserved peaks, which include the allocator's fragmentation. The same line
is then checked at ``--check`` frames when given (a longer pass, one run).

Protocol as fast_forward.py: random `large` weights with the trunk's matrix weights held in bf16
(as ``iggt reconstruct`` holds them), bf16 trunk autocast, float32 heads in passes of
``iggt.inference.runner.max_head_chunk`` frames (the most the runner's default gives a pass),
FlashAttention-3 where it runs, ``torch.inference_mode``, one run per pass after a warm-up at the
smallest frame count; peaks are ``torch.cuda.max_memory_allocated`` and
``max_memory_reserved`` with the weights.

Usage:
    python benchmarks/largest_pass.py [--sizes 336x504,518x518] [--frames 100,200,400] [--check 1000]
Prints a table and writes benchmarks/results/largest_pass_<gpu>.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from gpu_results import gpu_result_path  # noqa: E402

from iggt.inference.runner import HEAD_CHUNK_PIXELS, max_head_chunk  # noqa: E402
from iggt.model.iggt import IGGT  # noqa: E402
from iggt.model.layers.attention_kernels import select_backend  # noqa: E402


def one_pass(model: IGGT, frames: int, height: int, width: int) -> dict:
    """Seconds and peaks of one exact forward of ``frames`` random frames, or its failure."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    try:
        with torch.inference_mode():
            images = torch.rand(1, frames, 3, height, width, device="cuda")
            torch.cuda.synchronize()
            start = time.perf_counter()
            model(images, frames_chunk_size=max_head_chunk(height, width), trunk_dtype=torch.bfloat16)
            torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            del images
    except torch.OutOfMemoryError:
        torch.cuda.empty_cache()
        return {"frames": frames, "status": "out of memory"}
    return {
        "frames": frames,
        "status": "ok",
        "seconds": seconds,
        "peak_gb": torch.cuda.max_memory_allocated() / 1e9,
        "reserved_gb": torch.cuda.max_memory_reserved() / 1e9,
    }


def fit_line(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Least-squares (intercept, slope) of y over x, and the largest |residual|."""
    count = len(points)
    mean_x = sum(x for x, _ in points) / count
    mean_y = sum(y for _, y in points) / count
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)
    intercept = mean_y - slope * mean_x
    return intercept, slope, max(abs(y - intercept - slope * x) for x, y in points)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="336x504,518x518", help="HxW, comma-separated")
    parser.add_argument("--frames", default="100,200,400", help="frames of the measured passes, at least two")
    parser.add_argument("--check", type=int, help="also run one pass of this many frames against the line")
    parser.add_argument("--out", type=Path, help="JSON file (default benchmarks/results/largest_pass_<gpu>.json)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("largest_pass.py measures GPU memory; no CUDA device is available")
    counts = sorted({int(v) for v in args.frames.split(",") if v})
    if len(counts) < 2:
        raise SystemExit(f"--frames needs at least two frame counts to fit a line, got {args.frames!r}")
    gpu = torch.cuda.get_device_name()
    out = args.out or gpu_result_path("largest_pass", gpu)
    out.parent.mkdir(parents=True, exist_ok=True)
    reachable = torch.cuda.mem_get_info()[0]  # before anything of ours is allocated
    model = IGGT.from_preset("large", enable_track=False).eval()
    model.store_trunk_weights(torch.bfloat16)
    model.cuda()
    result = {
        "device": gpu,
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "attention": select_backend(torch.device("cuda"), torch.bfloat16),
        "trunk_weights": "bfloat16",
        "head_dtype": "float32",
        "head_chunk_pixels": HEAD_CHUNK_PIXELS,
        "reachable_gb": reachable / 1e9,
        "protocol": __doc__.split("\n\n")[2].replace("\n", " "),
        "sizes": [],
    }
    print(f"{'H x W':>10} {'frames':>6} {'seconds':>8} {'peak GB':>8} {'reserved':>8}")
    for size in args.sizes.split(","):
        height, width = (int(v) for v in size.split("x"))
        one_pass(model, counts[0], height, width)  # warm-up: kernels chosen, workspaces allocated
        rows = [one_pass(model, frames, height, width) for frames in counts]
        for row in rows:
            shown = (
                f"{row['seconds']:8.2f} {row['peak_gb']:8.2f} {row['reserved_gb']:8.2f}"
                if row["status"] == "ok"
                else row["status"]
            )
            print(f"{f'{height} x {width}':>10} {row['frames']:>6} {shown}", flush=True)
        entry = {"height": height, "width": width, "passes": rows}
        fitted = [row for row in rows if row["status"] == "ok"]
        if len(fitted) >= 2:
            intercept, slope, residual = fit_line([(row["frames"], row["reserved_gb"]) for row in fitted])
            largest = int((reachable / 1e9 - intercept) / slope)
            entry.update(
                intercept_gb=intercept,
                gb_per_frame=slope,
                largest_residual_gb=residual,
                largest_frames=largest,
                allocated_fit=dict(zip(("intercept_gb", "gb_per_frame", "largest_residual_gb"),
                                       fit_line([(row["frames"], row["peak_gb"]) for row in fitted]), strict=True)),
            )  # fmt: skip
            print(
                f"{f'{height} x {width}':>10} reserved = {intercept:.2f} GB + {slope * 1e3:.1f} MB x frames "
                f"(residual <= {residual:.2f} GB): largest pass {largest} frames in {reachable / 1e9:.1f} GB"
            )
            if args.check:
                check = one_pass(model, args.check, height, width)
                if check["status"] == "ok":
                    check["line_gb"] = intercept + slope * args.check
                entry["check"] = check
                print(f"{f'{height} x {width}':>10} check {check}", flush=True)
        result["sizes"].append(entry)
        out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
