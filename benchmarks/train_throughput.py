"""Steady-state training views/s of a run config, split into data, forward, loss, backward and optimiser.

    python benchmarks/train_throughput.py [--config CONFIG] [--steps 30] [--warmup 10] [KEY=VALUE ...]

Builds the run exactly as ``python -m iggt.cli.train`` does (model, optimiser, data stream), in a
temporary output folder, runs ``--warmup`` steps untimed (compilation, allocator, stream start),
then ``--steps`` steps twice:
- end to end, as the trainer's loop runs them (no synchronisation but the trainer's own), which
  gives the views/s a training run gets;
- split, with the device synchronised between stages (``iggt.train.stage_timer``), which gives
  each stage's own time; their sum exceeds the end-to-end time by the overlap lost.
Overrides are the trainer's ``section.key=value`` (e.g. ``data.batch_size=8``). Prints a table and
writes benchmarks/results/train_throughput_<device>.json (one row per call, appended).
"""

from __future__ import annotations

import argparse
import datetime
import json
import tempfile
import time
from pathlib import Path

import torch

from iggt.train.config import load_run_config
from iggt.train.data import to_device
from iggt.train.stage_timer import STAGES, StageTimer
from iggt.train.trainer import Trainer

RESULTS = Path(__file__).parent / "results"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def end_to_end(trainer: Trainer, steps: int) -> tuple[float, int]:
    """Seconds and views of ``steps`` steps run as the trainer's loop runs them."""
    device = trainer.context.device
    synchronize(device)
    start, views = time.perf_counter(), 0
    for _ in range(steps):
        batch = to_device(trainer.source.next_batch(), device)
        trainer.train_step(batch)
        views += batch["images"].shape[0] * batch["images"].shape[1]
    synchronize(device)
    return time.perf_counter() - start, views


def split(trainer: Trainer, steps: int) -> tuple[dict[str, float], int]:
    """Seconds per stage over ``steps`` steps, the device synchronised between stages."""
    timer = StageTimer(trainer.context.device)
    timer.start()
    views = 0
    for _ in range(steps):
        batch = to_device(trainer.source.next_batch(), trainer.context.device)
        timer.mark("data")
        trainer.train_step(batch, timer)
        views += batch["images"].shape[0] * batch["images"].shape[1]
    return dict(timer.seconds), views


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/small_synthetic.yaml")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--out", type=Path)
    parser.add_argument("overrides", nargs="*", help="section.key=value, as for the trainer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="iggt-throughput-") as scratch:
        overrides = [*args.overrides, f"train.output_dir={scratch}", "train.resume=never"]
        config = load_run_config(args.config, overrides)
        trainer = Trainer(config, show_progress=False)
        trainer.module.train()
        end_to_end(trainer, args.warmup)
        seconds, views = end_to_end(trainer, args.steps)
        stages, split_views = split(trainer, args.steps)
    device = trainer.context.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    row = {
        "config": args.config,
        "overrides": args.overrides,
        "preset": config.model.preset,
        "views_per_step": views // args.steps,
        "image_size": list(config.data.image_size),
        "precision": config.train.precision,
        "steps": args.steps,
        "views_per_s": views / seconds,
        "step_s": seconds / args.steps,
        "split_s_per_step": {stage: stages.get(stage, 0.0) / args.steps for stage in STAGES},
        "split_views_per_s": split_views / sum(stages.values()),
        "device": name,
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    step_ms, views_per_step = row["step_s"] * 1e3, row["views_per_step"]
    print(f"{name}: {row['views_per_s']:.1f} views/s end to end ({step_ms:.1f} ms a step of {views_per_step} views)")
    print(f"{'stage':<10} {'ms/step':>8} {'share':>6}")
    total = sum(row["split_s_per_step"].values())
    for stage, value in row["split_s_per_step"].items():
        print(f"{stage:<10} {value * 1e3:8.1f} {value / total:6.1%}")
    out = args.out or RESULTS / f"train_throughput_{'cuda' if device.type == 'cuda' else 'cpu'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = json.loads(out.read_text())["rows"] if out.exists() else []
    out.write_text(json.dumps({"rows": [*rows, row]}, indent=1))


if __name__ == "__main__":
    main()
