"""The shipped model on real photographs: depth, points and cameras against ground truth, and instances.

    python benchmarks/real_photos.py [--model iggt-small --model <weights> ...] [--device cpu]
        [--pictures outputs/real_photos] [--sdists DIR]

Real data come from installed packages, read at run time and never stored here
(iggt.eval.real_scenes; scikit-image, in the dev extra):

- the Middlebury 2014 Motorcycle stereo pair with ground-truth depth and cameras, scored with the
  ``iggt eval`` protocol (depth AbsRel and delta<1.25 with per-map median scale, Sim(3)-aligned
  point maps, the pair's relative pose: RRA/RTA, AUC@30);
- with ``--sdists DIR``, two more Middlebury pairs with ground-truth disparity but no calibration,
  Aloe (2006) and Cones (2003), read from the source archives of opencv-python and pandora in DIR
  (fetch them with ``python -m iggt.eval.sdist_fetch DIR``): depth up to scale and
  the pair's relative rotation and translation direction, not point maps;
- three single photographs without ground truth (scikit-image's astronaut, coffee and chelsea),
  for how the instances look.

For each model it records the metrics and, per picture, the number of instances and the share of
pixels they cover, in benchmarks/results/real_photos_<device>.json, and writes each picture's
instance map (colours only: nothing of the photograph) to benchmarks/results/real_photos/<model>/.
``--pictures`` also writes the overlays on the photographs there (not for committing).
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from iggt.eval.benchmark import BenchmarkConfig, evaluate_scene
from iggt.eval.cameras import relative_pose_errors
from iggt.eval.real_scenes import SDIST_PAIRS, middlebury_motorcycle, sdist_stereo_pair
from iggt.export.colours import instance_colours
from iggt.inference.preprocess import preprocess_images
from iggt.inference.runner import run_model
from iggt.instances import extract_instances
from iggt.model.hub import load_model

RESULTS = Path(__file__).parent / "results"
SINGLE_PHOTOS = ("astronaut", "coffee", "chelsea")
METRICS = ("abs_rel", "delta_1.25", "chamfer", "rotation_error_deg", "translation_error_deg")
PAIR_METRICS = ("abs_rel", "delta_1.25", "rotation_error_deg", "translation_error_deg")
"""What an uncalibrated pair scores: depth up to scale and the relative pose's angles."""


def model_label(source: str) -> str:
    path = Path(source)
    return path.stem if path.suffix else path.name if path.exists() else source


def _short(metric: str) -> str:
    return metric.replace("_error_deg", " err").replace("delta_1.25", "d<1.25")


def instance_summary(labels: np.ndarray) -> dict:
    """Instances (IDs > 0) and the fraction of pixels they cover in (S, H, W) labels."""
    return {"instances": int(len(np.setdiff1d(np.unique(labels), [0]))), "covered": float(np.mean(labels > 0))}


def save_pictures(name: str, predictions, labels: np.ndarray, folder: Path, overlays: Path | None) -> None:
    """One colour map per view (and, with ``overlays``, the map blended over the network's input)."""
    folder.mkdir(parents=True, exist_ok=True)
    for view, view_labels in enumerate(labels):
        colours = instance_colours(view_labels)
        suffix = f"_{view}" if len(labels) > 1 else ""
        Image.fromarray(colours).save(folder / f"{name}{suffix}.png", optimize=True)
        if overlays is not None:
            overlays.mkdir(parents=True, exist_ok=True)
            photo = (predictions.images[view] * 255).astype(np.float32)
            blended = (0.45 * photo + 0.55 * colours).round().astype(np.uint8)
            Image.fromarray(np.concatenate([photo.astype(np.uint8), blended], axis=1)).save(
                overlays / f"{name}{suffix}.jpg", quality=90
            )


def score_pair(scene, name: str, predict, seen: dict, config: BenchmarkConfig, segmenters: dict) -> dict:
    """One stereo pair's metrics; its relative-pose errors in degrees (RRA / RTA / AUC are 0 or 1 for one pair)."""
    rows = evaluate_scene(scene, name, predict, segmenters, config)
    geometry = {k: v for k, v in rows[0].items() if isinstance(v, float) and k != "seconds"}
    rotation, translation = relative_pose_errors(seen["predictions"].extrinsic.astype(np.float64), scene.extrinsic)
    return geometry | {"rotation_error_deg": float(rotation[0]), "translation_error_deg": float(translation[0])}


def evaluate_model(source: str, device: str, pictures: Path | None, sdists: Path | None) -> dict:
    from skimage import data

    model = load_model(source)
    label = model_label(source)
    config = BenchmarkConfig(
        tasks=("depth", "points", "cameras"), img_size=model.config.img_size, patch_size=model.config.patch_size
    )
    seen = {}

    def predict(images):
        seen["predictions"] = run_model(model, images, device=device)
        return seen["predictions"]

    segmenters = {label: lambda predictions: extract_instances(predictions).labels}
    scene = middlebury_motorcycle()
    geometry = score_pair(scene, "middlebury-motorcycle", predict, seen, config, segmenters)
    folder = RESULTS / "real_photos" / label
    overlays = pictures / label if pictures else None
    labels = extract_instances(seen["predictions"]).labels
    save_pictures("motorcycle", seen["predictions"], labels, folder, overlays)
    pictures_summary = {"motorcycle": instance_summary(labels)}
    for name in SINGLE_PHOTOS:
        photo = getattr(data, name)().astype(np.float32) / 255
        images, _ = preprocess_images([photo], img_size=model.config.img_size, patch_size=model.config.patch_size)
        predictions = run_model(model, images, device=device)
        labels = extract_instances(predictions).labels
        save_pictures(name, predictions, labels, folder, overlays)
        pictures_summary[name] = instance_summary(labels)
    result = {"model": label, "middlebury_motorcycle": geometry, "pictures": pictures_summary}
    if sdists is not None:
        pair_config = BenchmarkConfig(
            tasks=("depth", "cameras"), img_size=model.config.img_size, patch_size=model.config.patch_size
        )
        result["uncalibrated_pairs"] = {}
        for name in SDIST_PAIRS:
            result["uncalibrated_pairs"][name] = score_pair(
                sdist_stereo_pair(name, sdists), name, predict, seen, pair_config, segmenters
            )
            labels, picture = extract_instances(seen["predictions"]).labels, name.removeprefix("middlebury-")
            save_pictures(picture, seen["predictions"], labels, folder, overlays)
            pictures_summary[picture] = instance_summary(labels)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[], help="a model name or weights path (repeatable)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--pictures", type=Path, default=None, help="also write overlays on the photos here")
    parser.add_argument(
        "--out", type=Path, default=None, help="results file (default: results/real_photos_<device>.json)"
    )
    parser.add_argument(
        "--sdists", type=Path, default=None, help="folder of the opencv-python and pandora sdists: score Aloe and Cones"
    )
    args = parser.parse_args()
    rows = [evaluate_model(source, args.device, args.pictures, args.sdists) for source in args.model or ["iggt-small"]]
    print(f"{'model':<28} " + " ".join(f"{_short(m):>10}" for m in METRICS) + "  instances (motorcycle pair, photos)")
    for row in rows:
        geometry = row["middlebury_motorcycle"]
        counts = ", ".join(f"{k} {v['instances']}" for k, v in row["pictures"].items())
        print(
            f"{row['model']:<28} "
            + " ".join(f"{geometry.get(m, float('nan')):>10.3f}" for m in METRICS)
            + f"  {counts}"
        )
    for row in rows:
        for name, pair in row.get("uncalibrated_pairs", {}).items():
            print(f"{row['model']:<28} {name}: " + ", ".join(f"{_short(m)} {pair[m]:.3f}" for m in PAIR_METRICS))
    sources = [SDIST_PAIRS[name].source for name in SDIST_PAIRS] if args.sdists else []
    record = {
        "rows": rows,
        "data": "; ".join(
            ["Middlebury 2014 Motorcycle (skimage.data.stereo_motorcycle), skimage astronaut/coffee/chelsea", *sources]
        ),
        "device": args.device,
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    out = args.out or RESULTS / f"real_photos_{'cuda' if args.device.startswith('cuda') else 'cpu'}.json"
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
