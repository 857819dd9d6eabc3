"""Where the dense and instance heads of `large` peak in memory: live tensor bytes through one chunk, on any device.

The heads' working set, not the weights or the trunk, sets the full model's peak at a dozen frames
(12 frames at 336 x 504 on an H100: 9.1 GB at the peak, 3.8 GB at the trunk's, weights included).
A TorchDispatchMode counts the bytes of every tensor storage an operation creates until it is
freed, so the peak, the operation at it, the call stack inside iggt and the largest live tensors
there come out on the CPU as on the GPU, for a few frames in seconds (the working set is
proportional to the frames of a chunk). Random `large` weights and trunk tokens, float32 heads,
``torch.inference_mode``; the weights and the inputs are not counted.

Usage:
    python benchmarks/heads_memory.py [--frames 2] [--size 336 504] [--label NAME] [--out FILE]
Prints the peak and its tensors; appends a row to benchmarks/results/heads_memory_cpu.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import traceback
import weakref
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from iggt.model.iggt import IGGT

RESULTS = Path(__file__).parent / "results"


class LiveBytes(TorchDispatchMode):
    """Bytes of the storages created by operations inside the mode and not yet freed; the peak and what it held."""

    def __init__(self, top: int = 12) -> None:
        super().__init__()
        self.top = top
        self.live: dict[int, tuple[int, str, tuple[int, ...]]] = {}
        self.bytes = self.peak = 0
        self.at: dict = {}

    def _release(self, key: int) -> None:
        entry = self.live.pop(key, None)
        if entry is not None:
            self.bytes -= entry[0]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, tuple | list) else [out]:
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            key = storage.data_ptr()
            if key and key not in self.live:
                self.live[key] = (storage.nbytes(), str(func), tuple(tensor.shape))
                self.bytes += storage.nbytes()
                weakref.finalize(storage, self._release, key)
        if self.bytes > self.peak:
            self.peak = self.bytes
            frames = traceback.extract_stack()[:-1]
            self.at = {
                "operation": str(func),
                "stack": [f"{Path(f.filename).name}:{f.name}:{f.lineno}" for f in frames if "iggt" in f.filename][-6:],
                "largest": [
                    {"gb": size / 1e9, "made_by": made_by, "shape": list(shape)}
                    for size, made_by, shape in sorted(self.live.values(), key=lambda v: -v[0])[: self.top]
                ],
            }
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--size", type=int, nargs=2, default=(336, 504), metavar=("H", "W"))
    parser.add_argument("--label", default="", help="what this row measures (e.g. the commit)")
    parser.add_argument("--out", type=Path, default=RESULTS / "heads_memory_cpu.json")
    args = parser.parse_args()
    height, width = args.size
    torch.manual_seed(0)
    model = IGGT.from_preset("large", enable_track=False).eval()
    patches = (height // model.config.patch_size) * (width // model.config.patch_size)
    start = model.config.num_register_tokens + 1
    tokens = [torch.randn(1, args.frames, start + patches, 2 * model.config.embed_dim) for _ in range(4)]
    images = torch.rand(1, args.frames, 3, height, width)
    tracker = LiveBytes()
    with torch.inference_mode(), tracker:
        model._dense_chunk(tokens, images, start)
    row = {
        "label": args.label,
        "frames": args.frames,
        "height": height,
        "width": width,
        "peak_gb": tracker.peak / 1e9,
        "peak_gb_per_frame": tracker.peak / 1e9 / args.frames,
        **tracker.at,
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    print(f"{args.frames} frames at {height} x {width}: heads peak {row['peak_gb']:.3f} GB at {row['operation']}")
    print("  in " + " <- ".join(reversed(row["stack"])))
    for tensor in row["largest"]:
        print(f"  {tensor['gb']:.3f} GB {tensor['made_by']} {tuple(tensor['shape'])}")
    rows = json.loads(args.out.read_text()) if args.out.exists() else []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([*rows, row], indent=1))


if __name__ == "__main__":
    main()
