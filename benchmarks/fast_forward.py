"""Forward time and peak GPU memory of `large` per attention kernel and head precision, against the trunk's FLOP floor.

Protocol (as ../shared/reference/official_baseline.md): random weights (time and memory do not
depend on their values), random frames, bf16 trunk autocast, ``torch.inference_mode``; best of
``--repeats`` timed runs after a warm-up (cases of more than ``--big`` frames: one timed run after a
warm-up at 8 frames, since one run takes minutes); peak = ``torch.cuda.max_memory_allocated()``
over the timed runs, weights included. Heads see ``--chunk`` frames at a time (default: the
runner's, ``iggt.inference.runner.head_chunk_size``). Variants: the attention kernel (``sdpa``:
torch's best, ``fa3``: FlashAttention-3) and the heads' dtype. Part ``trunk`` times the patch
embedding + aggregator alone. The trunk's matrix weights are held in ``--trunk-weights`` (bfloat16
by default, as ``iggt reconstruct`` holds them: the same outputs, 1.8 GB less; float32 measures the
model as loaded).

Usage:
    python benchmarks/fast_forward.py [--cases 12x336x504,100x518x518] [--variants fa3/bfloat16,sdpa/float32]
Prints a table and writes benchmarks/results/fast_forward_<gpu>.json (rows appended per case, so
an interrupted run keeps what it measured).
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
from trunk_floor import floor_seconds  # noqa: E402

from iggt.device import dtype_name, parse_dtype  # noqa: E402
from iggt.inference.runner import head_chunk_size, store_weights_for_inference  # noqa: E402
from iggt.model.iggt import IGGT  # noqa: E402
from iggt.model.layers import fused_qk_rope, fused_residual_norm, head_matmul_precision  # noqa: E402
from iggt.model.layers.attention_kernels import attention_backend, select_backend  # noqa: E402
from iggt.model.layers.kernel_switch import switch_states  # noqa: E402

DEFAULT_CASES = "12x336x504,48x336x504,100x336x504,100x518x518"
DEFAULT_VARIANTS = "sdpa/float32,fa3/float32,sdpa/bfloat16,fa3/bfloat16"


def parse_cases(text: str) -> list[tuple[int, int, int]]:
    return [tuple(int(v) for v in case.split("x")) for case in text.split(",") if case]


def run_once(model: IGGT, images: torch.Tensor, part: str, head_dtype: torch.dtype, chunk: int) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    if part == "trunk":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            model.aggregator(images)
    else:
        model(images, frames_chunk_size=chunk, trunk_dtype=torch.bfloat16, head_dtype=head_dtype)
    torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(model, frames, height, width, part, attention, head_dtype, repeats, chunk, big) -> dict:
    chunk = chunk or head_chunk_size(frames, height, width)
    row = {
        "preset": "large",
        "part": part,
        "frames": frames,
        "height": height,
        "width": width,
        "attention": attention,
        "fused_qk_rope": fused_qk_rope.SWITCH.enabled(),
        "fused_residual_norm": fused_residual_norm.SWITCH.enabled(),
        "kernel_switches": switch_states(),
        "trunk_dtype": "bfloat16",
        "trunk_weights": dtype_name(model.trunk_weight_dtype),
        "heads_tf32_matmuls": head_matmul_precision.SWITCH.enabled(),
        "head_dtype": dtype_name(head_dtype) if part == "full" else None,
        "frames_chunk_size": chunk if part == "full" else None,
    }
    try:
        with torch.inference_mode(), attention_backend(attention):
            warm = torch.rand(1, min(frames, 8) if frames > big else frames, 3, height, width, device="cuda")
            run_once(model, warm, part, head_dtype, chunk)
            del warm
            images = torch.rand(1, frames, 3, height, width, device="cuda")
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            seconds = [run_once(model, images, part, head_dtype, chunk) for _ in range(1 if frames > big else repeats)]
            del images
    except torch.OutOfMemoryError:
        torch.cuda.empty_cache()
        return {**row, "status": "out of memory"}
    floor = floor_seconds(model.config, frames, height, width)
    return {
        **row,
        "status": "ok",
        "seconds": min(seconds),
        "peak_gb": torch.cuda.max_memory_allocated() / 1e9,
        "floor_s": floor,
        "floor_ratio": min(seconds) / floor,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=DEFAULT_CASES, help="FRAMESxHxW, comma-separated")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help="ATTENTION/HEAD_DTYPE, comma-separated")
    parser.add_argument("--parts", default="full,trunk", help="full, trunk or both")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big", type=int, default=200, help="cases above this many frames are timed once")
    parser.add_argument("--chunk", type=int, help="frames per head pass (default: the runner's head_chunk_size)")
    parser.add_argument("--trunk-weights", default="bfloat16", help="dtype the trunk's matrix weights are held in")
    parser.add_argument("--out", type=Path, help="JSON file (default benchmarks/results/fast_forward_<gpu>.json)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("fast_forward.py measures GPU time and memory; no CUDA device is available")
    gpu = torch.cuda.get_device_name()
    out = args.out or gpu_result_path("fast_forward", gpu)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = IGGT.from_preset("large", enable_track=False).eval()
    store_weights_for_inference(model, "cuda", parse_dtype(args.trunk_weights))
    model.cuda()
    variants = [(a, parse_dtype(d)) for a, d in (v.split("/") for v in args.variants.split(","))]
    result = {
        "device": gpu,
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "protocol": __doc__.split("\n\n")[1].replace("\n", " "),
        "rows": [],
    }
    print(
        f"{'part':>5} {'frames':>6} {'H x W':>10} {'attn':>5} {'heads':>9} {'seconds':>8} {'peak GB':>8} {'x floor':>7}"
    )
    for frames, height, width in parse_cases(args.cases):
        for part in args.parts.split(","):
            for attention, head_dtype in variants if part == "full" else sorted({(a, None) for a, _ in variants}):
                if attention == "fa3" and select_backend(torch.device("cuda"), torch.bfloat16) != "fa3":
                    continue  # select_backend raised or fell back: FA3 is not usable here
                row = measure(
                    model, frames, height, width, part, attention, head_dtype, args.repeats, args.chunk, args.big
                )
                result["rows"].append(row)
                heads = row["head_dtype"] or "-"
                shown = (
                    f"{row['seconds']:8.3f} {row['peak_gb']:8.2f} {row['floor_ratio']:7.2f}"
                    if row["status"] == "ok"
                    else row["status"]
                )
                print(
                    f"{part:>5} {frames:>6} {f'{height} x {width}':>10} {attention:>5} {heads:>9} {shown}", flush=True
                )
                out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
