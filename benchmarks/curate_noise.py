"""Path A's agreement with the truth against segmenter and sensor noise: engine scenes, masks
degraded by split / merge / drop (IDs always shuffled per frame), depth noise and pose jitter.
Prints a table and writes results/curate_noise_cpu.json (about a minute on 2 CPU cores).

    PYTHONPATH=src python benchmarks/curate_noise.py
"""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from iggt.curate.agreement import instance_agreement
from iggt.curate.association import AssociationConfig
from iggt.curate.degrade import Degradation, degrade_geometry, degrade_masks
from iggt.curate.from_masks import curate_with_masks
from iggt.eval.run_info import software_versions
from iggt.synth.config import RenderConfig, SceneConfig
from iggt.synth.generate import render_scenes

RESULTS = Path(__file__).parent / "results" / "curate_noise_cpu.json"
SEEDS, VIEWS, SIZE, TRIALS = [5, 6, 7, 8, 9, 10], 8, (60, 80), 2
LEVELS = {
    "none": Degradation(),
    "mild": Degradation(split=0.05, merge=0.05, drop=0.05, depth_noise=0.005, rotation_deg=0.25, translation_m=0.005),
    "realistic": Degradation(split=0.1, merge=0.1, drop=0.1, depth_noise=0.01, rotation_deg=0.5, translation_m=0.01),
    "heavy": Degradation(split=0.2, merge=0.2, drop=0.2, depth_noise=0.02, rotation_deg=1.0, translation_m=0.02),
    "severe": Degradation(split=0.3, merge=0.3, drop=0.3, depth_noise=0.03, rotation_deg=2.0, translation_m=0.04),
}


def score(scene, degradation: Degradation, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    masks = [degrade_masks(ids, degradation, rng) for ids in scene.instance_ids]
    depth, extrinsic = degrade_geometry(scene.depth, scene.extrinsic, degradation, rng)
    curated = curate_with_masks(replace(scene, depth=depth, extrinsic=extrinsic), masks)
    raw = np.stack([m.labels for m in masks])  # per-frame IDs as the segmenter gave them
    return {
        **instance_agreement(curated.scene.instance_ids, scene.instance_ids),
        "raw_ari": instance_agreement(raw, scene.instance_ids)["ari"],
    }


def main() -> None:
    config = SceneConfig(trajectory_weights={"orbit": 1.0, "look_at": 1.0})
    scenes = list(render_scenes(SEEDS, VIEWS, SIZE, config, RenderConfig(shadows=False)))
    rows = {}
    print(f"{'noise':<10} {'ARI mean':>8} {'ARI min':>8} {'labelled':>8} {'raw ARI':>8}")
    for name, degradation in LEVELS.items():
        scores = [score(scene, degradation, trial) for scene in scenes for trial in range(TRIALS)]
        row = {key: float(np.mean([s[key] for s in scores])) for key in scores[0]}
        row["ari_min"] = float(min(s["ari"] for s in scores))
        rows[name] = {"degradation": asdict(degradation), **row}
        print(
            f"{name:<10} {row['ari']:8.3f} {row['ari_min']:8.3f} {row['labelled_fraction']:8.3f} {row['raw_ari']:8.3f}"
        )
    RESULTS.write_text(
        json.dumps(
            {
                "date": datetime.date.today().isoformat(),
                "device": "cpu",
                "versions": software_versions(),
                "scenes": {"seeds": SEEDS, "views": VIEWS, "image_size": list(SIZE), "trajectories": "orbit, look_at"},
                "trials_per_scene": TRIALS,
                "association": asdict(AssociationConfig()),
                "ari": "adjusted Rand index over pixels labelled in both the truth and the curated scene",
                "levels": rows,
            },
            indent=1,
        )
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
