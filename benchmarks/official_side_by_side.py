"""The official IGGT release's forward time and peak memory, measured as fast_forward.py measures iggt.

    python benchmarks/official_side_by_side.py --official DIR [--cases 12x336x504/released,48x336x504/off]

DIR holds the official release's ``iggt/`` package (e.g. ``git archive HEAD iggt utils`` of
lifuguan/IGGT_official; nothing of it is in this repository). Run it in its own process, never
beside iggt: both packages are called ``iggt``. Protocol: random weights, random frames, bf16
autocast around the model as its demo does (its heads turn autocast off), ``torch.inference_mode``,
best of ``--repeats`` runs after one warm-up, peak = ``torch.cuda.max_memory_allocated()``.
Each case says how its heads run: ``released`` (their default, 12 frames per chunk; more than 12
frames crash there) or ``off`` (all frames at once, as official_baseline.md measured 48 and 100
frames); ``trunk`` times its aggregator alone. Writes benchmarks/results/official_side_by_side_<gpu>.json.

The release imports packages its forward pass never calls (detectron2, sam2, basicsr,
transformers, huggingface_hub); small stand-ins defined here are registered under those names so
that it imports without them. einops, which its window attention calls, must be installed.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import sys
import time
import types
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).parent))
from gpu_results import gpu_result_path  # noqa: E402
from trunk_floor import floor_seconds  # noqa: E402

DEFAULT_CASES = "12x336x504/released,48x336x504/off,100x336x504/off,100x518x518/trunk"
LARGE = SimpleNamespace(embed_dim=1024, num_register_tokens=4, patch_size=14, patch_embed_depth=24, depth=24)


def _register(name: str, **attributes) -> None:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    sys.modules[name] = module


class _NoPositionEncoding(torch.nn.Module):
    """Stands in for sam2's sine encoding: the release computes it in its adaptor and never reads it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()

    def forward(self, x):
        return None


def _register_import_only_packages() -> None:
    for name in ("detectron2", "sam2", "sam2.modeling", "basicsr", "basicsr.archs", "src", "src.model"):
        _register(name)
    _register("detectron2.layers", ShapeSpec=lambda **kwargs: SimpleNamespace(**kwargs))
    _register("sam2.modeling.position_encoding", PositionEmbeddingSine=_NoPositionEncoding)
    pair = lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x, x)  # noqa: E731
    _register("basicsr.archs.arch_util", to_2tuple=pair, trunc_normal_=torch.nn.init.trunc_normal_)
    _register("transformers", Mask2FormerConfig=object)
    _register("huggingface_hub", PyTorchModelHubMixin=type("PyTorchModelHubMixin", (), {}))
    _register("src.model.norm", RMSNorm=torch.nn.RMSNorm)


def official_model(official: Path) -> torch.nn.Module:
    _register_import_only_packages()
    sys.path.insert(0, str(official))
    from iggt.models.vggt import IGGT

    return IGGT().cuda().eval()


def run_once(model, images, mode: str) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        if mode == "trunk":
            model.aggregator(images)
        else:
            model(images)
    torch.cuda.synchronize()
    return time.perf_counter() - start


def set_chunking(model, enabled: bool) -> None:
    """Released heads chunk at 12 frames; chunking off hands them all frames at once."""
    for name in ("depth_head", "point_head", "part_head"):
        head = getattr(model, name)
        head.forward = (
            head.__class__.forward.__get__(head)
            if enabled
            else functools.partial(head.__class__.forward, head, frames_chunk_size=None)
        )


def measure(model, frames: int, height: int, width: int, mode: str, repeats: int) -> dict:
    row = {"implementation": "official", "preset": "large", "frames": frames, "height": height, "width": width}
    row.update(part="trunk" if mode == "trunk" else "full", heads=mode, attention="torch sdpa (its own layers)")
    set_chunking(model, mode != "off")
    try:
        with torch.inference_mode():
            images = torch.rand(1, frames, 3, height, width, device="cuda")
            run_once(model, images, mode)
            torch.cuda.reset_peak_memory_stats()
            seconds = min(run_once(model, images, mode) for _ in range(repeats))
            del images
    except torch.OutOfMemoryError:
        torch.cuda.empty_cache()
        return {**row, "status": "out of memory"}
    except Exception as exc:  # the release's own failures (e.g. >12 frames as released) are results
        torch.cuda.empty_cache()
        return {**row, "status": f"fails: {type(exc).__name__}: {str(exc)[:120]}"}
    floor = floor_seconds(LARGE, frames, height, width)
    peak = torch.cuda.max_memory_allocated() / 1e9
    return {
        **row,
        "status": "ok",
        "seconds": seconds,
        "peak_gb": peak,
        "floor_s": floor,
        "floor_ratio": seconds / floor,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="folder holding the release's iggt/ package")
    parser.add_argument("--cases", default=DEFAULT_CASES, help="FRAMESxHxW/MODE, MODE one of released, off, trunk")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not (args.official / "iggt" / "models" / "vggt.py").is_file():
        raise SystemExit(f"{args.official} does not hold the official release's iggt/models/vggt.py")
    if not torch.cuda.is_available():
        raise SystemExit("official_side_by_side.py measures GPU time and memory; no CUDA device is available")
    gpu = torch.cuda.get_device_name()
    out = args.out or gpu_result_path("official_side_by_side", gpu)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = official_model(args.official)
    result = {
        "device": gpu,
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "rows": [],
    }
    print(f"{'frames':>6} {'H x W':>10} {'heads':>9} {'seconds':>8} {'peak GB':>8} {'x floor':>7}")
    for case in args.cases.split(","):
        size, mode = case.split("/")
        frames, height, width = (int(v) for v in size.split("x"))
        row = measure(model, frames, height, width, mode, args.repeats)
        result["rows"].append(row)
        ok = row["status"] == "ok"
        shown = f"{row['seconds']:8.3f} {row['peak_gb']:8.2f} {row['floor_ratio']:7.2f}" if ok else row["status"]
        print(f"{frames:>6} {f'{height} x {width}':>10} {mode:>9} {shown}", flush=True)
        out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
