"""Multi-GPU scaling of training through torchrun: throughput per GPU, efficiency, loss agreement.

Runs the same training config once per process count K with the same GLOBAL batch (per-rank
batch = global / K) and the same steps, each through
``torchrun --standalone --nproc_per_node=K -m iggt.cli.train``, then compares with K = 1:
- throughput: views/s of all ranks together (median of the logged intervals after the first),
  per GPU, and scaling efficiency = views/s(K) / (K * views/s(1));
- loss agreement: the mean over logged steps of |loss(K) - loss(1)|, next to the step-to-step
  noise of the K = 1 curve (mean |loss(t) - loss(t-1)|): curves that match within noise have a
  ratio near or below 1.

Usage (one GPU per process; on a CPU machine --device cpu uses gloo, for checking the plumbing):
    python benchmarks/scaling.py --config configs/small_synthetic.yaml --procs 1 2 --global-batch 8 --steps 200
Prints a table and writes benchmarks/results/scaling_<device>.json with both loss curves.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def run_training(config: str, procs: int, global_batch: int, steps: int, device: str, out: Path) -> list[dict]:
    """Train with ``procs`` processes and return the run's log records (rank 0's log.jsonl)."""
    if global_batch % procs:
        raise SystemExit(f"--global-batch {global_batch} is not divisible by {procs} processes")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
        "-m", "iggt.cli.train", "--config", config, "--no-progress", "--output-dir", str(out),
        f"data.batch_size={global_batch // procs}", f"train.steps={steps}", f"train.device={device}",
        "train.resume=never", f"train.checkpoint_interval={steps}",
    ]  # fmt: skip
    environment = {**os.environ, "NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1"}
    subprocess.run(command, check=True, env=environment)
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def summarise(records: list[dict]) -> dict:
    views = [r["views_per_s"] for r in records[1:]] or [records[0]["views_per_s"]]
    return {"views_per_s": statistics.median(views), "loss": {r["step"]: r["loss"] for r in records}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--global-batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    args = parser.parse_args()
    runs = {}
    with tempfile.TemporaryDirectory(prefix="iggt-scaling-") as scratch:
        for procs in sorted(set(args.procs) | {1}):
            records = run_training(
                args.config, procs, args.global_batch, args.steps, args.device, Path(scratch) / f"k{procs}"
            )
            runs[procs] = summarise(records)
    base = runs[1]
    steps = sorted(base["loss"])
    noise = statistics.mean(abs(base["loss"][b] - base["loss"][a]) for a, b in zip(steps, steps[1:], strict=False))
    rows = []
    print(f"{'procs':>5} {'views/s':>9} {'per GPU':>9} {'efficiency':>10} {'|dloss|':>8} {'/noise':>7}")
    for procs, run in sorted(runs.items()):
        shared = [s for s in steps if s in run["loss"]]
        gap = statistics.mean(abs(run["loss"][s] - base["loss"][s]) for s in shared)
        row = {
            "procs": procs,
            "views_per_s": run["views_per_s"],
            "views_per_s_per_gpu": run["views_per_s"] / procs,
            "efficiency": run["views_per_s"] / (procs * base["views_per_s"]),
            "mean_abs_loss_gap": gap,
            "gap_over_noise": gap / noise if noise else float("nan"),
            "loss_curve": run["loss"],
        }
        rows.append(row)
        print(
            f"{procs:>5} {row['views_per_s']:9.1f} {row['views_per_s_per_gpu']:9.1f} {row['efficiency']:10.2f} "
            f"{gap:8.4f} {row['gap_over_noise']:7.2f}"
        )
    device = torch.cuda.get_device_name() if args.device == "cuda" else "cpu (gloo)"
    result = {
        "device": device,
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": args.config,
        "global_batch": args.global_batch,
        "steps": args.steps,
        "loss_noise": noise,
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"scaling_{args.device}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
