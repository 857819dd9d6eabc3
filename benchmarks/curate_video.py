"""Path C's agreement with the truth: engine rooms reconstructed by the shipped model (its depth and
cameras, no sensor), the exact instance masks degraded as in curate_noise.py (split / merge / drop,
IDs shuffled per frame), associated with path C's thresholds. For reference, the same masks with the
engine's exact depth and poses (path A), IGGT's own instances re-associated, and SA-V style
masklets from a simulated tracker with identity switches, with and without the masklet links.
Prints a table and writes results/curate_video_cpu.json (a few minutes on 2 CPU cores).

    PYTHONPATH=src python benchmarks/curate_video.py
"""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from iggt.curate.agreement import instance_agreement
from iggt.curate.degrade import Degradation, degrade_masks, simulate_masklets
from iggt.curate.from_masks import curate_with_masks
from iggt.curate.from_video import VIDEO_ASSOCIATION, capture_from_reconstruction, own_instance_masks
from iggt.eval.run_info import software_versions
from iggt.inference.reconstruct import reconstruct
from iggt.model.hub import DEFAULT_MODEL, load_model
from iggt.synth.config import RenderConfig, SceneConfig
from iggt.synth.generate import render_scenes

RESULTS = Path(__file__).parent / "results" / "curate_video_cpu.json"
SEEDS, VIEWS, SIZE = [5, 6, 7, 8], 6, (224, 224)
LEVELS = {
    "none": Degradation(),
    "mild": Degradation(split=0.05, merge=0.05, drop=0.05),
    "realistic": Degradation(split=0.1, merge=0.1, drop=0.1),
    "heavy": Degradation(split=0.2, merge=0.2, drop=0.2),
}
TRACKER = {"switch": 0.2, "drop": 0.1}
"""The simulated tracker: per object, probability of an identity switch and per-mask drop rate."""


def _ids_of(masks) -> np.ndarray:
    """(S, H, W) the masks' own labels (per-frame, or the tracks where given)."""
    return np.stack([np.concatenate([[0], m.tracks])[m.labels] if m.tracks else m.labels for m in masks])


def score_scene(scene, capture, seed: int) -> dict[str, dict[str, float]]:
    """Every row's agreement on one scene, keyed by row name; ``seed`` draws the degradations."""
    truth, rows = scene.instance_ids, {}
    for name, degradation in LEVELS.items():
        rng = np.random.default_rng(seed)
        masks = [degrade_masks(ids, degradation, rng) for ids in truth]
        rows[f"masks {name}"] = instance_agreement(
            curate_with_masks(capture, masks, VIDEO_ASSOCIATION).scene.instance_ids, truth
        )
        rows[f"masks {name}, exact geometry (path A)"] = instance_agreement(
            curate_with_masks(scene, masks).scene.instance_ids, truth
        )
        rows[f"masks {name}"]["raw_ari"] = instance_agreement(_ids_of(masks), truth)["ari"]
        if name in ("none", "realistic"):  # why path C leaves the pixel repair off
            repaired = curate_with_masks(capture, masks, replace(VIDEO_ASSOCIATION, pixel_repair=True))
            rows[f"masks {name}, pixel repair on"] = instance_agreement(repaired.scene.instance_ids, truth)
    faithful = simulate_masklets(truth, 0.0, TRACKER["drop"], np.random.default_rng(seed))
    rows["masklets without switches, links used"] = instance_agreement(
        curate_with_masks(capture, faithful, VIDEO_ASSOCIATION).scene.instance_ids, truth
    )
    tracked = simulate_masklets(truth, TRACKER["switch"], TRACKER["drop"], np.random.default_rng(seed))
    rows["masklets, links used"] = instance_agreement(
        curate_with_masks(capture, tracked, VIDEO_ASSOCIATION).scene.instance_ids, truth
    )
    unlinked = [replace(m, tracks=None) for m in tracked]
    rows["masklets, links ignored"] = instance_agreement(
        curate_with_masks(capture, unlinked, VIDEO_ASSOCIATION).scene.instance_ids, truth
    )
    rows["masklets, links used"]["raw_ari"] = instance_agreement(_ids_of(tracked), truth)["ari"]
    own = curate_with_masks(capture, own_instance_masks(capture), VIDEO_ASSOCIATION)
    rows["IGGT's own instances re-associated"] = instance_agreement(own.scene.instance_ids, truth)
    rows["IGGT's own instances re-associated"]["raw_ari"] = instance_agreement(capture.instance_ids, truth)["ari"]
    return rows


def main() -> None:
    config = SceneConfig(trajectory_weights={"orbit": 1.0, "look_at": 1.0})
    scenes = list(render_scenes(SEEDS, VIEWS, SIZE, config, RenderConfig(shadows=False)))
    model = load_model(DEFAULT_MODEL)
    per_scene, seconds = [], []
    for seed, scene in zip(SEEDS, scenes, strict=True):
        start = time.perf_counter()
        images = [image.astype(np.float32) / 255 for image in scene.images]
        reconstruction = reconstruct(images, model, device="cpu", progress=False)
        seconds.append(time.perf_counter() - start)
        capture = capture_from_reconstruction(reconstruction, images, scene.frame_names)
        per_scene.append(score_scene(scene, capture, seed))
    rows = {}
    print(f"{'row':<42} {'ARI mean':>8} {'ARI min':>8} {'labelled':>8} {'raw ARI':>8}")
    for name in per_scene[0]:
        scores = [scene_rows[name] for scene_rows in per_scene]
        row = {
            "ari": float(np.mean([s["ari"] for s in scores])),
            "ari_min": float(min(s["ari"] for s in scores)),
            "labelled_fraction": float(np.mean([s["labelled_fraction"] for s in scores])),
        }
        if "raw_ari" in scores[0]:
            row["raw_ari"] = float(np.mean([s["raw_ari"] for s in scores]))
        rows[name] = row
        raw = f"{row['raw_ari']:8.3f}" if "raw_ari" in row else f"{'':>8}"
        print(f"{name:<42} {row['ari']:8.3f} {row['ari_min']:8.3f} {row['labelled_fraction']:8.3f} {raw}")
    RESULTS.write_text(
        json.dumps(
            {
                "date": datetime.date.today().isoformat(),
                "device": "cpu",
                "versions": software_versions(),
                "model": DEFAULT_MODEL,
                "reconstruct_seconds_per_scene": float(np.mean(seconds)),
                "scenes": {"seeds": SEEDS, "views": VIEWS, "image_size": list(SIZE), "trajectories": "orbit, look_at"},
                "levels": {name: asdict(degradation) for name, degradation in LEVELS.items()},
                "tracker": TRACKER,
                "association": asdict(VIDEO_ASSOCIATION),
                "ari": "adjusted Rand index over pixels labelled in both the truth and the curated scene",
                "raw_ari": "ARI of the masks' own IDs (per-frame labels, or the tracker's masklet IDs)",
                "rows": rows,
            },
            indent=1,
        )
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
