"""Why the cameras fail: the model's relative-pose errors on a benchmark, next to what chance gives.

    python benchmarks/camera_diagnosis.py --data data/synthetic-val [--model iggt-small] [--device cpu]

For every frame pair of every scene (the ``iggt eval`` protocol, iggt.eval.cameras) it records
the rotation error, the translation-direction error *without* sign folding, the ground-truth
baseline (|t_ij| in the benchmark's normalised units: mean point distance 1) and rotation angle,
and the predicted baseline. It prints and records:

- the distribution of the translation-direction error against that of a direction drawn
  uniformly on the sphere (density sin(e) / 2): a model whose directions carry no information
  follows it, and then sign folding adds exactly (1 - cos 30) / 2 = 6.7 % of the pairs to RTA@30;
  a model that points backwards has a peak near 180;
- RTA@30 and RRA@30 by ground-truth baseline and by rotation angle (quartiles), which tells
  whether wide baselines are learnt and narrow ones are noise;
- the correlation of predicted and ground-truth baselines (scale learnt or not).

Writes benchmarks/results/camera_diagnosis_<model>.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import numpy as np
import torch

from iggt.eval.benchmark import BenchmarkConfig
from iggt.eval.cameras import relative_pose_errors, relative_poses
from iggt.eval.ground_truth import prepare_views, select_views
from iggt.inference.runner import run_model
from iggt.io.scene_format import list_scenes, read_scene
from iggt.model.hub import load_model

RESULTS = Path(__file__).parent / "results"
BINS = np.arange(0, 181, 15)


def scene_pairs(model, scene, config: BenchmarkConfig, device: str) -> dict[str, np.ndarray]:
    """Per-pair errors and baselines of one scene."""
    views = select_views(len(scene.images), config.views)
    images, truth = prepare_views(scene, views, config.img_size, config.patch_size, config.preprocess_mode)
    predictions = run_model(model, images, device=device)
    predicted = predictions.extrinsic.astype(np.float64)
    rotation_error, translation_error = relative_pose_errors(predicted, truth.extrinsic, sign_ambiguity=False)
    gt_rotation, gt_translation = relative_poses(truth.extrinsic)
    _, predicted_translation = relative_poses(predicted)
    # Baselines in each scene's own unit: mean distance of its valid points to the first camera.
    gt_points = truth.world_points[truth.valid]
    first_centre = -truth.extrinsic[0, :, :3].T @ truth.extrinsic[0, :, 3]
    gt_unit = np.linalg.norm(gt_points - first_centre, axis=-1).mean()
    predicted_points = predictions.world_points[truth.valid].astype(np.float64)
    predicted_unit = np.linalg.norm(predicted_points, axis=-1).mean()
    trace = np.einsum("pii->p", gt_rotation)
    return {
        "rotation_error": rotation_error,
        "translation_error": translation_error,
        "gt_baseline": np.linalg.norm(gt_translation, axis=1) / gt_unit,
        "predicted_baseline": np.linalg.norm(predicted_translation, axis=1) / predicted_unit,
        "gt_rotation": np.degrees(np.arccos(np.clip((trace - 1) / 2, -1, 1))),
    }


def by_quartile(values: np.ndarray, rotation_error: np.ndarray, translation_error: np.ndarray) -> list[dict]:
    """RRA@30 and RTA@30 (unfolded and folded) of the pairs in each quartile of ``values``."""
    edges = np.quantile(values, [0, 0.25, 0.5, 0.75, 1.0])
    rows = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        chosen = (values >= low) & (values <= high)
        folded = np.minimum(translation_error[chosen], 180 - translation_error[chosen])
        rows.append(
            {
                "range": [float(low), float(high)],
                "pairs": int(chosen.sum()),
                "rra@30": float(np.mean(rotation_error[chosen] < 30)),
                "rta@30": float(np.mean(translation_error[chosen] < 30)),
                "rta@30_folded": float(np.mean(folded < 30)),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", default="iggt-small")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    model = load_model(args.model)
    config = BenchmarkConfig(tasks=("cameras",), img_size=model.config.img_size, patch_size=model.config.patch_size)
    parts = [scene_pairs(model, read_scene(path), config, args.device) for path in list_scenes(args.data)]
    pairs = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    rotation_error, translation_error = pairs["rotation_error"], pairs["translation_error"]
    observed = np.histogram(translation_error, BINS)[0] / len(translation_error)
    chance = (np.cos(np.radians(BINS[:-1])) - np.cos(np.radians(BINS[1:]))) / 2
    folded = np.minimum(translation_error, 180 - translation_error)
    result = {
        "model": args.model,
        "data": args.data.name,
        "scenes": len(parts),
        "pairs": len(translation_error),
        "rta@30": float(np.mean(translation_error < 30)),
        "rta@30_folded": float(np.mean(folded < 30)),
        "backwards@30": float(np.mean(translation_error > 150)),
        "chance_backwards@30": float((1 - np.cos(np.radians(30))) / 2),
        "rra@30": float(np.mean(rotation_error < 30)),
        "translation_error_histogram": {
            "bins_deg": BINS.tolist(),
            "observed": observed.tolist(),
            "uniform_direction": chance.tolist(),
        },
        "by_gt_baseline": by_quartile(pairs["gt_baseline"], rotation_error, translation_error),
        "by_gt_rotation": by_quartile(pairs["gt_rotation"], rotation_error, translation_error),
        "baseline_correlation": float(np.corrcoef(pairs["gt_baseline"], pairs["predicted_baseline"])[0, 1]),
        "median_gt_baseline": float(np.median(pairs["gt_baseline"])),
        "median_predicted_baseline": float(np.median(pairs["predicted_baseline"])),
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    print(f"{result['pairs']} pairs of {result['scenes']} scenes")
    print(
        f"RTA@30 {100 * result['rta@30']:.1f} % unfolded, {100 * result['rta@30_folded']:.1f} % folded; "
        f"backwards (> 150 deg) {100 * result['backwards@30']:.1f} % (uniform directions: "
        f"{100 * result['chance_backwards@30']:.1f} %); RRA@30 {100 * result['rra@30']:.1f} %"
    )
    print(f"{'error (deg)':>12} {'observed':>9} {'uniform':>8}")
    for low, value, expected in zip(BINS[:-1], observed, chance, strict=True):
        print(f"{low:5d}-{low + 15:<6d} {100 * value:8.1f}% {100 * expected:7.1f}%")
    for name in ("by_gt_baseline", "by_gt_rotation"):
        print(name)
        for row in result[name]:
            low, high = row["range"]
            print(
                f"  {low:7.3f}-{high:<7.3f} RRA@30 {100 * row['rra@30']:5.1f}  RTA@30 {100 * row['rta@30']:5.1f} "
                f"(folded {100 * row['rta@30_folded']:5.1f})"
            )
    print(f"baseline correlation (GT vs predicted): {result['baseline_correlation']:.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"camera_diagnosis_{Path(args.model).stem}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
