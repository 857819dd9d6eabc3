"""Can the camera head learn easy cameras? Train on the easy trajectories, measure on held-out ones.

    python benchmarks/camera_curriculum.py [--config configs/small_synthetic.yaml] [--minutes 4]
        [--init iggt-small | scratch] [--eval-scenes 32] [section.key=value ...]

A check of the camera loss and the pose encoding before spending a training budget: on the
``drift`` trajectory (a 0.15-0.6 m slide facing one object, relative rotations below 30 degrees)
and on ``pan`` (pure rotations about one eye), a camera head whose loss and encoding are right
must reach AUC@30 near 100 %. The script

1. renders held-out scenes of each easy kind (a stream seed no training run here uses),
2. measures the starting model on them (the shipped model by default),
3. trains it for ``--minutes`` on the easy kinds only (the trainer of ``--config`` with the
   overrides given; its schedule is fitted to the time),
4. measures it again, and the trained model on the full trajectory mix as well.

Per kind it reports RRA@5/15/30, RTA@5/15/30 and AUC@30 (VGGT's protocol, iggt.eval.cameras;
for ``pan`` the ground-truth baseline is zero, so its AUC counts rotation errors alone) and the
median errors. Writes benchmarks/results/camera_curriculum_<device>.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from iggt.data.synthetic_stream import SyntheticSceneStream, SyntheticStreamConfig
from iggt.eval.cameras import metrics_from_errors, relative_pose_errors
from iggt.model.hub import load_model
from iggt.synth.config import RenderConfig, SceneConfig
from iggt.train.config import build_dataclass, load_run_config
from iggt.train.trainer import Trainer

RESULTS = Path(__file__).parent / "results"
EASY = ("drift", "pan")
EVAL_SEED = 7_919_000  # the held-out stream; training runs here use train.seed
THRESHOLDS = (5, 15, 30)


def eval_batches(kind: str, scenes: int, views: int, size: tuple[int, int], scene: dict, device, compile_render: bool):
    """Held-out batches of ``scenes`` scenes drawn with one trajectory kind (or the config's mix for "mix")."""
    scene_options = dict(scene)
    if kind != "mix":
        scene_options["trajectory_weights"] = {kind: 1.0}
    config = SyntheticStreamConfig(
        num_views=views,
        image_size=size,
        batch_size=min(scenes, 8),
        base_seed=EVAL_SEED,
        scene=build_dataclass(SceneConfig, scene_options, "scene"),
        render=RenderConfig(compile=compile_render),
    )
    stream = SyntheticSceneStream(config, device)
    return [stream.batch_at(step) for step in range(max(1, scenes // config.batch_size))]


@torch.no_grad()
def camera_errors(model, batches, trunk_dtype) -> tuple[np.ndarray, np.ndarray]:
    """Rotation and translation-direction errors (degrees, sign folded) of all pairs of all scenes."""
    model.eval()
    rotation, translation = [], []
    for batch in batches:
        predicted = model(batch["images"], trunk_dtype=trunk_dtype)["extrinsic"].double().cpu().numpy()
        truth = batch["extrinsic"].double().cpu().numpy()
        for pred, gt in zip(predicted, truth, strict=True):
            r, t = relative_pose_errors(pred, gt)
            rotation.append(r)
            translation.append(t)
    return np.concatenate(rotation), np.concatenate(translation)


def summary(kind: str, rotation: np.ndarray, translation: np.ndarray) -> dict:
    """RRA/RTA at the thresholds, AUC@30 and medians; pan (zero baseline) counts rotations alone."""
    rotation_only = kind == "pan"
    counted = "rotation" if rotation_only else "rotation+translation"
    row = {"kind": kind, "pairs": int(len(rotation)), "auc_counts": counted}
    row.update(metrics_from_errors(rotation, None if rotation_only else translation, THRESHOLDS))
    row["median_rotation_error"] = float(np.median(rotation))
    if not rotation_only:
        row["median_translation_error"] = float(np.median(translation))
    return row


def measure(model, sets: dict, trunk_dtype) -> list[dict]:
    return [summary(kind, *camera_errors(model, batches, trunk_dtype)) for kind, batches in sets.items()]


def print_rows(title: str, rows: list[dict]) -> None:
    print(title)
    for row in rows:
        text = " ".join(f"{k} {v:.3f}" for k, v in row.items() if isinstance(v, float))
        print(f"  {row['kind']:<6} pairs {row['pairs']:<5} {text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/small_synthetic.yaml")
    parser.add_argument("--minutes", type=float, default=4.0, help="training time on the easy trajectories")
    parser.add_argument("--init", default="iggt-small", help="starting weights (a model name or path), or 'scratch'")
    parser.add_argument("--eval-scenes", type=int, default=32, help="held-out scenes per trajectory kind")
    parser.add_argument("--steps", type=int, default=0, help="train.steps (0: fitted to --minutes from the step rate)")
    parser.add_argument("--out", default=None, help="results file (default: results/camera_curriculum_<device>.json)")
    parser.add_argument("overrides", nargs="*", help="section.key=value, as for the trainer")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="iggt-curriculum-") as scratch:
        overrides = [
            *args.overrides,
            "data.sources.0.options.scene.trajectory_weights={drift: 1.0, pan: 1.0}",
            f"train.output_dir={scratch}",
            "train.resume=never",
            f"train.max_time_minutes={args.minutes}",
            "train.transfer_checkpoint=false",
        ]
        if args.init != "scratch":
            overrides.append(f"model.init_checkpoint={args.init}")
        if args.steps:
            overrides.append(f"train.steps={args.steps}")
        config = load_run_config(args.config, overrides)
        source = config.data.sources[0].options
        device = torch.device("cuda" if torch.cuda.is_available() and config.train.device != "cpu" else "cpu")
        trunk_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        size, views = tuple(config.data.image_size), config.data.views
        scene = {k: v for k, v in source.get("scene", {}).items() if k != "trajectory_weights"}
        compile_render = bool(source.get("render", {}).get("compile", False))
        sets = {
            kind: eval_batches(kind, args.eval_scenes, views, size, scene, device, compile_render)
            for kind in (*EASY, "mix")
        }

        before = []
        if args.init != "scratch":
            before = measure(load_model(args.init).to(device), sets, trunk_dtype)
            print_rows(f"before ({args.init})", before)

        trainer = Trainer(config, show_progress=False)
        started = time.perf_counter()
        result = trainer.run()
        train_s = time.perf_counter() - started
        trainer.source.close()
        after = measure(trainer.model, sets, trunk_dtype)
        print_rows(f"after {result.step} steps on {'+'.join(EASY)}", after)
        log = [json.loads(line) for line in (Path(scratch) / "log.jsonl").read_text().splitlines() if line.strip()]

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    record = {
        "config": args.config,
        "overrides": args.overrides,
        "init": args.init,
        "train_kinds": list(EASY),
        "steps": result.step,
        "views_trained": result.step * config.data.batch_size * views,
        "train_seconds": round(train_s, 1),
        "eval_scenes_per_kind": args.eval_scenes,
        "eval_seed": EVAL_SEED,
        "before": before,
        "after": after,
        "loss_camera": [[r["step"], r.get("loss_camera")] for r in log],
        "device": name,
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    kind = "cuda" if device.type == "cuda" else "cpu"
    out = Path(args.out) if args.out else RESULTS / f"camera_curriculum_{kind}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
