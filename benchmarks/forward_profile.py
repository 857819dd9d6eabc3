"""Where `large`'s exact forward spends its GPU time: by stage, and the trunk's kernels by kind.

Protocol as fast_forward.py (random weights and frames, bf16 trunk autocast, ``inference_mode``,
one warm-up). Stages are timed one after another with a device synchronisation between them, in
the order ``IGGT.forward`` runs them (trunk, camera head, then per chunk of ``--chunk`` frames the
depth head, point head, part adaptor and part head), so they add up to about the full forward.
The trunk is then run once under torch.profiler and its CUDA kernel time is grouped by kind
(attention, matrix products, the fused QK-norm + RoPE kernel, layer norms, other element-wise
passes); that says which lever is left once attention runs at its kernel's rate.

Usage:
    python benchmarks/forward_profile.py [--case 100x518x518] [--attention fa3] [--head-dtype bfloat16]
Prints two tables and writes benchmarks/results/forward_profile_<gpu>.json (one entry per run).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))
from gpu_results import gpu_result_path  # noqa: E402
from trunk_floor import floor_seconds  # noqa: E402

from iggt.device import dtype_name, parse_dtype  # noqa: E402
from iggt.inference.runner import head_chunk_size, store_weights_for_inference  # noqa: E402
from iggt.model.iggt import IGGT  # noqa: E402
from iggt.model.layers import fused_qk_rope, fused_residual_norm  # noqa: E402
from iggt.model.layers.attention_kernels import attention_backend  # noqa: E402
from iggt.model.layers.head_matmul_precision import heads_matmuls_like_convolutions  # noqa: E402
from iggt.model.layers.kernel_switch import switch_states  # noqa: E402

KERNEL_KINDS = (  # first match wins: cuDNN's convolutions are implicit GEMMs and its SDPA is cuDNN too
    ("attention", ("flash", "fmha", "attn", "sdpa")),
    ("fused QK-norm + RoPE", ("qk_norm_rope",)),
    ("fused residual + norm", ("residual_norm",)),
    ("convolution", ("fprop", "dgrad", "wgrad", "nhwckrsc", "conv", "winograd")),
    ("matrix products", ("gemm", "cutlass", "sm90_xmma", "nvjet", "cublas", "wgmma")),
    ("layer norm", ("layer_norm", "layernorm")),
)


def kernel_kind(name: str) -> str:
    """The kind a CUDA kernel's name says it is (first match in KERNEL_KINDS), else element-wise."""
    lowered = name.lower()
    for kind, needles in KERNEL_KINDS:
        if any(needle in lowered for needle in needles):
            return kind
    return "other element-wise"


class StageClock:
    """Adds up synchronised wall time per stage name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def stage(self, name: str):
        torch.cuda.synchronize()
        start = time.perf_counter()
        yield
        torch.cuda.synchronize()
        self.seconds[name] += time.perf_counter() - start


@contextlib.contextmanager
def heads_context(head_dtype: torch.dtype):
    """The heads' autocast and matrix-product precision, as IGGT.forward runs them."""
    with (
        torch.autocast("cuda", dtype=head_dtype, enabled=head_dtype != torch.float32),
        heads_matmuls_like_convolutions(torch.device("cuda")),
    ):
        yield


def staged_forward(model: IGGT, images: torch.Tensor, head_dtype: torch.dtype, chunk: int) -> dict[str, float]:
    """IGGT.forward's steps, each timed (exact mode, no track head)."""
    clock = StageClock()
    with clock.stage("trunk"), torch.autocast("cuda", dtype=torch.bfloat16):
        layers, start_index = model.aggregator(images)
    with clock.stage("camera head"), torch.autocast("cuda", enabled=False):
        model.camera_head(layers[model.config.depth - 1][:, :, :1].float(), model.config.camera_iterations)
    with heads_context(head_dtype):
        for begin in range(0, images.shape[1], chunk):
            frames = images[:, begin : begin + chunk]
            with clock.stage("head inputs"):
                tokens = model._head_tokens(layers, begin, begin + chunk)
            with clock.stage("depth head"):
                model.depth_head(tokens, frames, start_index)
            with clock.stage("point head"):
                _, _, geometry = model.point_head(tokens, frames, start_index, return_features=True)
            with clock.stage("part adaptor"):
                adaptor = model.part_adaptor(tokens, frames, start_index)
            with clock.stage("part head"):
                model.part_head(adaptor, geometry, frames)
    return dict(clock.seconds)


def trunk_kernels(model: IGGT, images: torch.Tensor, top: int = 0) -> tuple[dict[str, float], list[dict]]:
    """CUDA kernel seconds of one trunk pass, grouped by :func:`kernel_kind`, and its ``top`` kernels."""
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            model.aggregator(images)
        torch.cuda.synchronize()
    kinds: dict[str, float] = defaultdict(float)
    kernels = []
    for event in prof.key_averages():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            kinds[kernel_kind(event.key)] += event.self_device_time_total / 1e6
            kernels.append(
                {"kernel": event.key[:120], "seconds": event.self_device_time_total / 1e6, "calls": event.count}
            )
    kernels.sort(key=lambda kernel: -kernel["seconds"])
    return dict(sorted(kinds.items(), key=lambda item: -item[1])), kernels[:top]


HEADS = ("depth_head", "point_head", "part_adaptor", "part_head")


def top_ops(prof, top: int) -> list[dict]:
    """The ``top`` aten operators by the device time of the kernels each launches itself, with their
    input shapes and the matmul precision in force (which op, at which shape, a kernel serves)."""
    ops = [
        event
        for event in prof.key_averages(group_by_input_shape=True)
        if event.device_type == torch.autograd.DeviceType.CPU and event.self_device_time_total > 0
    ]
    ops.sort(key=lambda event: -event.self_device_time_total)
    return [
        {
            "op": event.key,
            "shapes": str(event.input_shapes)[:160],
            "seconds": event.self_device_time_total / 1e6,
            "calls": event.count,
        }
        for event in ops[:top]
    ]


def head_kernels(
    model: IGGT, images: torch.Tensor, head_dtype: torch.dtype, chunk: int, top: int, ops: int = 0
) -> dict:
    """CUDA kernel seconds of each head over the first ``chunk`` frames: by kind, and its ``top`` kernels
    (with ``ops``, also its ``ops`` costliest aten operators and their input shapes)."""
    with torch.autocast("cuda", dtype=torch.bfloat16):
        layers, start_index = model.aggregator(images[:, :chunk])
    frames = images[:, :chunk]
    tokens = model._head_tokens(layers, 0, chunk)
    calls = {
        "depth_head": lambda: model.depth_head(tokens, frames, start_index),
        "point_head": lambda: model.point_head(tokens, frames, start_index, return_features=True),
        "part_adaptor": lambda: model.part_adaptor(tokens, frames, start_index),
    }
    with heads_context(head_dtype):
        geometry = calls["point_head"]()[2]
        adaptor = calls["part_adaptor"]()
        calls["part_head"] = lambda: model.part_head(adaptor, geometry, frames)
        report = {}
        for name in HEADS:
            calls[name]()  # warm
            torch.cuda.synchronize()
            activities = [ProfilerActivity.CUDA, ProfilerActivity.CPU] if ops else [ProfilerActivity.CUDA]
            with profile(activities=activities, record_shapes=bool(ops)) as prof:
                calls[name]()
                torch.cuda.synchronize()
            kernels = [
                (event.key, event.self_device_time_total / 1e6, event.count)
                for event in prof.key_averages()
                if event.device_type == torch.autograd.DeviceType.CUDA
            ]
            kinds: dict[str, float] = defaultdict(float)
            for key, seconds, _ in kernels:
                kinds[kernel_kind(key)] += seconds
            kernels.sort(key=lambda item: -item[1])
            report[name] = {
                "kernel_seconds": sum(seconds for _, seconds, _ in kernels),
                "launches": sum(count for _, _, count in kernels),
                "by_kind": dict(sorted(kinds.items(), key=lambda item: -item[1])),
                "top": [
                    {"kernel": key[:120], "seconds": seconds, "calls": count} for key, seconds, count in kernels[:top]
                ],
                "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
            }
            if ops:
                report[name]["ops"] = top_ops(prof, ops)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="100x518x518", help="FRAMESxHxW")
    parser.add_argument("--attention", default="auto", help="auto, sdpa or fa3")
    parser.add_argument("--head-dtype", default="bfloat16")
    parser.add_argument("--chunk", type=int, help="frames per head pass (default: the runner's head_chunk_size)")
    parser.add_argument("--repeats", type=int, default=2, help="staged runs; the fastest is kept")
    parser.add_argument(
        "--channels-last", action="store_true", help="the heads' convolution weights in channels-last memory format"
    )
    parser.add_argument("--trunk-kernels", type=int, default=0, metavar="N", help="list the trunk's N top kernels")
    parser.add_argument("--head-kernels", type=int, default=0, metavar="N", help="profile each head's N top kernels")
    parser.add_argument(
        "--head-ops", type=int, default=0, metavar="N", help="with --head-kernels, each head's N top ops"
    )
    parser.add_argument("--compile-heads", action="store_true", help="torch.compile the heads (warm-up compiles)")
    parser.add_argument("--trunk-weights", default="bfloat16", help="dtype the trunk's matrix weights are held in")
    parser.add_argument("--out", type=Path, help="JSON file (default benchmarks/results/forward_profile_<gpu>.json)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("forward_profile.py measures GPU time; no CUDA device is available")
    frames, height, width = (int(x) for x in args.case.split("x"))
    head_dtype = parse_dtype(args.head_dtype)
    chunk = args.chunk or head_chunk_size(frames, height, width)
    gpu = torch.cuda.get_device_name()
    out = args.out or gpu_result_path("forward_profile", gpu)
    model = IGGT.from_preset("large", enable_track=False).cuda().eval()
    if args.channels_last:
        for head in (model.depth_head, model.point_head, model.part_adaptor, model.part_head):
            head.to(memory_format=torch.channels_last)
    store_weights_for_inference(model, "cuda", parse_dtype(args.trunk_weights))
    if args.compile_heads:
        for name in HEADS:
            getattr(model, name).compile()
    with torch.inference_mode(), attention_backend(args.attention):
        images = torch.rand(1, frames, 3, height, width, device="cuda")
        start = time.perf_counter()
        staged_forward(model, images, head_dtype, chunk)  # warm-up
        warmup_s = time.perf_counter() - start
        runs = [staged_forward(model, images, head_dtype, chunk) for _ in range(args.repeats)]
        stages = min(runs, key=lambda run: sum(run.values()))
        kinds, trunk_top = trunk_kernels(model, images, args.trunk_kernels)
        heads = (
            head_kernels(model, images, head_dtype, chunk, args.head_kernels, args.head_ops)
            if args.head_kernels
            else None
        )
    floor = floor_seconds(model.config, frames, height, width)
    row = {
        "preset": "large",
        "frames": frames,
        "height": height,
        "width": width,
        "attention": args.attention,
        "fused_qk_rope": fused_qk_rope.SWITCH.enabled(),
        "fused_residual_norm": fused_residual_norm.SWITCH.enabled(),
        "kernel_switches": switch_states(),
        "head_dtype": dtype_name(head_dtype),
        "frames_chunk_size": chunk,
        "heads_channels_last": args.channels_last,
        "heads_compiled": args.compile_heads,
        "trunk_weights": args.trunk_weights,
        "warmup_s": warmup_s,
        "stage_seconds": stages,
        "seconds": sum(stages.values()),
        "floor_s": floor,
        "trunk_floor_ratio": stages["trunk"] / floor,
        "trunk_kernel_seconds": kinds,
        "trunk_top_kernels": trunk_top,
        "head_kernels": heads,
        "device": gpu,
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    print(f"{frames} x {height} x {width}, attention {args.attention}, heads {row['head_dtype']}")
    print(f"{'stage':>22} {'seconds':>8}")
    for name, seconds in stages.items():
        print(f"{name:>22} {seconds:8.3f}")
    print(f"{'total':>22} {row['seconds']:8.3f}   (trunk {row['trunk_floor_ratio']:.2f} x its floor {floor:.3f} s)")
    print(f"{'trunk kernels':>22} {'seconds':>8}")
    for name, seconds in kinds.items():
        print(f"{name:>22} {seconds:8.3f}")
    for kernel in trunk_top:
        print(f"    {kernel['seconds']:.4f} s x{kernel['calls']:<5} {kernel['kernel'][:90]}")
    for name, head in (heads or {}).items():
        print(f"{name}: {head['kernel_seconds']:.4f} s in {head['launches']} launches; {head['by_kind']}")
        for kernel in head["top"]:
            print(f"    {kernel['seconds']:.4f} s x{kernel['calls']:<4} {kernel['kernel'][:90]}")
        for op in head.get("ops", []):
            print(f"    {op['seconds']:.4f} s x{op['calls']:<4} {op['op']} {op['shapes'][:100]}")
    entries = json.loads(out.read_text()) if out.exists() else []
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([*entries, row], indent=1))


if __name__ == "__main__":
    main()
