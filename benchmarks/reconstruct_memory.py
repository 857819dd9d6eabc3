"""Host memory of the whole `iggt reconstruct` command against the number of frames.

Writes S JPEG photos (--photo-size, textured so they decode like photos) and runs the command on
the first S of them for each S in --frames, each run in its own process, windowed (--window,
--overlap), with the result in a store (--store) and, for contrast, without (--in-memory). The
network is a random-weight preset (--preset, default tiny at --img-size 224): the memory in
question is the command's own (input decoding, the network's input, the result, instance
linking, export), which does not depend on what the weights predict. The parent samples the
child's anonymous resident memory (RssAnon of /proc/<pid>/status: heap, not the pages of
memory-mapped files, which the kernel writes back and drops) every 20 ms.

Usage:
    python benchmarks/reconstruct_memory.py --frames 100 200 400 800 --in-memory   # 2-core CPU, ~10 min
    python benchmarks/reconstruct_memory.py --frames 8 16 --out /tmp/memory.json    # a quick check of the script
Prints a table and writes benchmarks/results/reconstruct_memory_cpu.json (or --out).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from long_capture import AnonymousPeak

RESULTS = Path(__file__).parent / "results"


def write_photos(folder: Path, count: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    """``count`` JPEG photos of ``size`` (H, W): smooth colour fields with fine texture, shifted a
    little from one to the next like frames of a walk."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    height, width = size
    base = rng.random((height // 8 + 2, width // 8 + 2 + count, 3)).astype(np.float32)
    paths = []
    for index in range(count):
        coarse = base[:, index : index + width // 8 + 2]
        field = np.kron(coarse, np.ones((8, 8, 1), np.float32))[:height, :width]
        grain = rng.random((height, width, 1), dtype=np.float32) * 0.2
        pixels = (np.clip(field * 0.8 + grain, 0, 1) * 255).astype(np.uint8)
        paths.append(folder / f"frame{index:05d}.jpg")
        Image.fromarray(pixels).save(paths[-1], quality=90)
    return paths


def anonymous_mb(pid: int) -> float | None:
    """The child's ``RssAnon`` in MB, None once it has exited."""
    try:
        return AnonymousPeak.now(pid)
    except (FileNotFoundError, ProcessLookupError):
        return None


def run_command(arguments: list[str]) -> dict:
    """Run ``iggt`` with ``arguments`` in a child process; its time and peak anonymous memory."""
    command = [sys.executable, "-c", "import sys; from iggt.cli.main import main; sys.exit(main(sys.argv[1:]))"]
    start = time.perf_counter()
    child = subprocess.Popen([*command, *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    while child.poll() is None:
        now = anonymous_mb(child.pid)
        peak = max(peak, now or 0.0)
        time.sleep(0.02)
    out, err = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"iggt {' '.join(arguments)} failed:\n{err[-2000:]}")
    return {"seconds": time.perf_counter() - start, "peak_anon_mb": peak, "stdout_tail": out.splitlines()[-3:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[100, 200, 400, 800])
    parser.add_argument("--photo-size", type=int, nargs=2, default=[480, 640], metavar=("H", "W"))
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--img-size", type=int, default=224, help="the network's image size (width)")
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--overlap", type=int, default=4)
    parser.add_argument("--formats", nargs="+", default=["json", "colmap", "masks"])
    parser.add_argument("--in-memory", action="store_true", help="also run each count without a store")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import torch

    from iggt.model.iggt import IGGT

    rows = []
    with tempfile.TemporaryDirectory(prefix="iggt-memory-") as scratch:
        scratch = Path(scratch)
        torch.manual_seed(0)
        weights = IGGT.from_preset(args.preset, img_size=args.img_size).save_pretrained(scratch / "model.safetensors")
        photos = scratch / "photos"
        photos.mkdir()
        paths = write_photos(photos, max(args.frames), tuple(args.photo_size))
        for frames in sorted(args.frames):
            folder = scratch / f"input{frames}"
            folder.mkdir()
            for path in paths[:frames]:
                (folder / path.name).symlink_to(path)
            for stored in [True, False] if args.in_memory else [True]:
                tag = f"{frames}-{'store' if stored else 'memory'}"
                arguments = [
                    "reconstruct", str(folder), "--model", str(weights), "--device", "cpu", "--quiet",
                    "--window", str(args.window), "--overlap", str(args.overlap), "--out", str(scratch / f"out{tag}"),
                    "--formats", *args.formats,
                ]  # fmt: skip
                if stored:
                    arguments += ["--store", str(scratch / f"store{tag}")]
                result = run_command(arguments)
                row = {"frames": frames, "store": stored, **result}
                rows.append(row)
                print(f"{frames:>6} {'store' if stored else 'memory':>7} {row['seconds']:>8.1f} s "
                      f"{row['peak_anon_mb']:>9.0f} MB", flush=True)  # fmt: skip
    record = {
        "benchmark": "reconstruct_memory",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": "cpu",
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "torch": torch.__version__,
        "settings": {
            "preset": f"{args.preset} (random weights, seed 0) at img_size {args.img_size}",
            "photo_size": args.photo_size,
            "window": args.window,
            "overlap": args.overlap,
            "formats": args.formats,
        },  # fmt: skip
        "growth_mb_per_frame": _growth(rows),
        "rows": rows,
    }
    print_table(record)
    out = args.out or RESULTS / "reconstruct_memory_cpu.json"
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}")


def _growth(rows: list[dict]) -> dict[str, float]:
    """Least-squares slope of peak anonymous memory against frames, per mode (MB a frame)."""
    slopes = {}
    for stored in (True, False):
        chosen = [row for row in rows if row["store"] == stored]
        if len(chosen) >= 2:
            frames = np.array([row["frames"] for row in chosen], float)
            peaks = np.array([row["peak_anon_mb"] for row in chosen])
            slopes["store" if stored else "memory"] = float(np.polyfit(frames, peaks, 1)[0])
    return slopes


def print_table(record: dict) -> None:
    print(f"\n{'frames':>6} {'result':>7} {'seconds':>9} {'peak anon MB':>13}")
    for row in record["rows"]:
        print(f"{row['frames']:>6} {'store' if row['store'] else 'memory':>7} {row['seconds']:>9.1f} "
              f"{row['peak_anon_mb']:>13.0f}")  # fmt: skip
    for mode, slope in record["growth_mb_per_frame"].items():
        print(f"growth ({mode}): {slope:.2f} MB a frame")


if __name__ == "__main__":
    main()
