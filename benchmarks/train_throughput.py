"""Steady-state training views/s of a run config, split into data, forward, loss, backward and optimiser.

    python benchmarks/train_throughput.py [--config CONFIG] [--steps 30] [--warmup 10] [KEY=VALUE ...]
        [--variant "NAME: KEY=VALUE KEY=VALUE" ...]

Builds the run exactly as ``python -m iggt.cli.train`` does (model, optimiser, data stream), in a
temporary output folder, runs ``--warmup`` steps untimed (compilation, allocator, stream start),
then ``--steps`` steps twice:
- end to end, as the trainer's loop runs them (no synchronisation but the trainer's own), which
  gives the views/s a training run gets;
- split, with the device synchronised between stages (``iggt.train.stage_timer``), which gives
  each stage's own time; their sum exceeds the end-to-end time by the overlap lost.
Overrides are the trainer's ``section.key=value`` (e.g. ``data.batch_size=8``), given to every
variant; each ``--variant`` adds its own on top (one row each, in one process, so a compiled
renderer is compiled once). Without ``--variant`` the config runs as it is. ``--profile N``
also lists the operators with the most device time over N more steps, the device's busy time a
step, and (uncompiled, on CUDA) each top-level part's forward time. Prints a table and
writes benchmarks/results/train_throughput_<device>.json (one row per variant, appended).
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


def parse_variant(text: str) -> tuple[str, list[str]]:
    """ "NAME: KEY=VALUE KEY=VALUE" -> (NAME, overrides)."""
    name, _, overrides = text.partition(":")
    if not name.strip():
        raise SystemExit(f"--variant {text!r} needs a name: 'NAME: KEY=VALUE ...'")
    return name.strip(), overrides.split()


def measure(config_path: str, overrides: list[str], steps: int, warmup: int, profile_steps: int = 0) -> dict:
    """One row: the run of ``config_path`` with ``overrides``, measured end to end and split."""
    with tempfile.TemporaryDirectory(prefix="iggt-throughput-") as scratch:
        config = load_run_config(config_path, [*overrides, f"train.output_dir={scratch}", "train.resume=never"])
        trainer = Trainer(config, show_progress=False)
        trainer.module.train()
        device = trainer.context.device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        started = time.perf_counter()
        end_to_end(trainer, warmup)
        warmup_s = time.perf_counter() - started
        seconds, views = end_to_end(trainer, steps)
        stages, split_views = split(trainer, steps)
        top = profile(trainer, profile_steps) if profile_steps else None
        parts = None
        if profile_steps and device.type == "cuda" and not config.train.compile:
            parts = module_split(trainer, profile_steps)
            print("  forward ms a step: " + ", ".join(f"{k} {v:.1f}" for k, v in parts.items()))
        trainer.check_losses()
        trainer.source.close()
    row = {
        "overrides": overrides,
        "preset": config.model.preset,
        "views_per_step": views // steps,
        "image_size": list(config.data.image_size),
        "precision": config.train.precision,
        "head_precision": config.train.head_precision,
        "compile": config.train.compile,
        "steps": steps,
        "warmup_s": warmup_s,
        "views_per_s": views / seconds,
        "step_s": seconds / steps,
        "split_s_per_step": {stage: stages.get(stage, 0.0) / steps for stage in STAGES},
        "split_views_per_s": split_views / sum(stages.values()),
    }
    if device.type == "cuda":
        row["peak_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
    if top is not None:
        row["top_ops"] = top
    if parts is not None:
        row["forward_ms_per_step"] = parts
    return row


MODULES = ("aggregator", "camera_head", "depth_head", "point_head", "part_adaptor", "part_head")
"""The network's top-level parts, timed apart by :func:`module_split`."""


def module_split(trainer: Trainer, steps: int) -> dict[str, float]:
    """Milliseconds a step of each top-level part's forward (CUDA events around it; the model
    uncompiled, so that the hooks run), and of the whole step, over ``steps`` steps."""
    model = trainer.model
    events: dict[str, list] = {name: [] for name in MODULES}
    handles = []
    for name in MODULES:
        module = getattr(model, name, None)
        if module is None:
            continue

        def before(_module, _inputs, name=name):
            events[name].append([torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)])
            events[name][-1][0].record()

        def after(_module, _inputs, _output, name=name):
            events[name][-1][1].record()

        handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    try:
        synchronize(trainer.context.device)
        start = time.perf_counter()
        end_to_end(trainer, steps)
        synchronize(trainer.context.device)
        total = time.perf_counter() - start
    finally:
        for handle in handles:
            handle.remove()
    split = {name: sum(a.elapsed_time(b) for a, b in pairs) / steps for name, pairs in events.items() if pairs}
    return {**split, "step": total * 1e3 / steps}


def profile(trainer: Trainer, steps: int, rows: int = 25) -> list[dict]:
    """The operators with the most device time (self) over ``steps`` steps, by torch.profiler;
    the first entry is the device's busy time of all operators a step (against the step's wall time,
    it says how much of the step the host's launching and waiting takes)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    device = trainer.context.device
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch_profile(activities=activities) as profiler:
        end_to_end(trainer, steps)
    attribute = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    averages = profiler.key_averages()
    # kernels only: an operator's own entry repeats the device time of the kernels it launched
    kernels = [e for e in averages if device.type != "cuda" or e.device_type == torch.autograd.DeviceType.CUDA]
    busy = sum(getattr(event, attribute) for event in kernels) / 1e3 / steps
    events = sorted(averages, key=lambda event: -getattr(event, attribute))[:rows]
    table = [{"op": "ALL (device busy)", "ms_per_step": busy, "calls": sum(e.count for e in kernels) // steps}]
    table += [
        {"op": event.key[:120], "ms_per_step": getattr(event, attribute) / 1e3 / steps, "calls": event.count // steps}
        for event in events
    ]
    for entry in table:
        print(f"  {entry['ms_per_step']:8.2f} ms {entry['calls']:6d}x  {entry['op']}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/small_synthetic.yaml")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--profile", type=int, default=0, help="also profile this many steps of each variant")
    parser.add_argument("--variant", action="append", default=[], help='"NAME: KEY=VALUE ..." (repeatable)')
    parser.add_argument("overrides", nargs="*", help="section.key=value, as for the trainer")
    args = parser.parse_args()
    variants = [parse_variant(text) for text in args.variant] or [("config", [])]
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name() if device_type == "cuda" else "cpu"
    out = args.out or RESULTS / f"train_throughput_{device_type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    print(f"{'variant':<24} {'views/s':>8} {'split':>8} {'ms/step':>8} " + " ".join(f"{s:>9}" for s in STAGES))
    for variant, extra in variants:
        row = measure(args.config, [*args.overrides, *extra], args.steps, args.warmup, args.profile)
        row = {"variant": variant, "config": args.config, **row, "device": name, "torch": torch.__version__}
        row["date"] = date
        stages = " ".join(f"{row['split_s_per_step'][s] * 1e3:9.1f}" for s in STAGES)
        print(
            f"{variant:<24} {row['views_per_s']:8.1f} {row['split_views_per_s']:8.1f} "
            f"{row['step_s'] * 1e3:8.1f} {stages}",
            flush=True,
        )
        rows = json.loads(out.read_text())["rows"] if out.exists() else []
        out.write_text(json.dumps({"rows": [*rows, row]}, indent=1))  # after every row: a timeout keeps the rest


if __name__ == "__main__":
    main()
