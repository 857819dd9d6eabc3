"""Forward-pass time and peak GPU memory of the `large` IGGT (the official architecture).

Same protocol as ../shared/reference/official_baseline.md: random weights (time and memory do not
depend on their values), trunk in bf16 autocast and heads in float32 as the official code does,
torch.inference_mode, random input frames; median of ``--repeats`` timed runs after one warm-up;
peak = torch.cuda.max_memory_allocated(). Heads process frames in chunks of ``--chunk``.

Usage:
    python benchmarks/forward_speed.py --device cuda
Prints a table and writes benchmarks/results/forward_speed_<device>.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import time
from pathlib import Path

import torch

from iggt.device import dtype_name
from iggt.model.iggt import IGGT

TRUNK_DTYPE = torch.bfloat16
RESULTS = Path(__file__).parent / "results"
# (frames, height, width): the official release's table rows, plus what it cannot run.
CASES = [
    (1, 336, 504),
    (8, 336, 504),
    (12, 336, 504),
    (13, 336, 504),
    (32, 336, 504),
    (64, 336, 504),
    (8, 518, 518),
    (100, 336, 504),
]


def time_case(model: IGGT, frames: int, height: int, width: int, repeats: int, chunk: int) -> dict:
    device = next(model.parameters()).device
    images = torch.rand(1, frames, 3, height, width, device=device)
    settings = {"frames_chunk_size": chunk, "trunk_dtype": TRUNK_DTYPE}
    try:
        with torch.inference_mode():
            model(images, **settings)  # warm-up
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            seconds = []
            for _ in range(repeats):
                start = time.perf_counter()
                model(images, **settings)
                torch.cuda.synchronize()
                seconds.append(time.perf_counter() - start)
        peak = torch.cuda.max_memory_allocated() / 2**30
        return {
            "frames": frames,
            "height": height,
            "width": width,
            "seconds": statistics.median(seconds),
            "peak_gb": peak,
            "status": "ok",
        }
    except torch.OutOfMemoryError:
        return {"frames": frames, "height": height, "width": width, "status": "out of memory"}
    finally:
        del images
        torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=8, help="frames per dense-head chunk")
    parser.add_argument("--max-seconds", type=float, default=150.0, help="stop starting new cases after this")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("forward_speed.py measures GPU time and memory; no CUDA device is available")
    model = IGGT.from_preset("large", enable_track=False).to(args.device).eval()
    rows, start = [], time.perf_counter()
    print(f"{'frames':>6} {'H x W':>10} {'seconds':>8} {'peak GB':>8}")
    for frames, height, width in CASES:
        if time.perf_counter() - start > args.max_seconds:
            break
        row = time_case(model, frames, height, width, args.repeats, args.chunk)
        rows.append(row)
        shown = f"{row['seconds']:8.3f} {row['peak_gb']:8.2f}" if row["status"] == "ok" else row["status"]
        print(f"{frames:>6} {f'{height} x {width}':>10} {shown}", flush=True)
    result = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "preset": "large (track head off)",
        "trunk_dtype": dtype_name(TRUNK_DTYPE),
        "frames_chunk_size": args.chunk,
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "forward_speed_cuda.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
