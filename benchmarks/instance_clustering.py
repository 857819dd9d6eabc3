"""Speed and accuracy of the instance step on synthetic features with known groups.

Features: ``--groups`` random unit centres in ``--channels`` dimensions, group sizes drawn
unevenly (the smallest groups hold a fraction of a percent of the pixels), each pixel its
centre plus Gaussian noise (``--noise`` per dimension), renormalised; generated in chunks.
Timed: ``cluster_features`` on N independently drawn pixels, and ``extract_instances``
(clustering + majority filter + 3D lifting) on a 12-view scene at 336 x 504 whose groups are
28 x 28-pixel blocks. Accuracy: adjusted Rand index against the true groups on a random
subsample of pixels.

For reference, the official demo's HDBSCAN over all pixels took 21 s for 169 k and 54 s for
339 k pixels on 16 CPU cores (../shared/reference/official_baseline.md).

On CUDA the assignment of pixels to centres and HDBSCAN's spanning tree of the sample move to the
GPU (:mod:`iggt.instances.spanning_tree`); on the CPU HDBSCAN runs on one core. The "HDBSCAN of the
sample" rows time that part alone both ways on one 10,000-pixel sample and give the agreement of
the two labelings (ARI against each other, not against the truth).

Usage: python benchmarks/instance_clustering.py [--device cpu|cuda|all] [--sizes 1000000 10000000]
Prints a table and writes benchmarks/results/instance_clustering_<device>.json.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.metrics import adjusted_rand_score

from iggt.instances import InstanceConfig, cluster_features, extract_instances
from iggt.instances.clustering import sample_labels
from iggt.structures import Predictions

RESULTS = Path(__file__).parent / "results"
ARI_SUBSAMPLE = 200_000
GENERATION_CHUNK = 1 << 20
SCENE_VIEWS, SCENE_HEIGHT, SCENE_WIDTH = 12, 336, 504


def group_model(groups: int, channels: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(G, C) random unit centres and (G,) uneven group probabilities."""
    centres = rng.normal(size=(groups, channels))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = rng.lognormal(sigma=1.0, size=groups)
    return centres, weights / weights.sum()


def noisy_features(truth: np.ndarray, centres: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """(N,) true groups -> (N, C) float32 unit features (centre + noise), written chunk by chunk."""
    features = np.empty((len(truth), centres.shape[1]), dtype=np.float32)
    for start in range(0, len(truth), GENERATION_CHUNK):
        chunk_truth = truth[start : start + GENERATION_CHUNK]
        chunk = centres[chunk_truth] + noise * rng.normal(size=(len(chunk_truth), centres.shape[1]))
        features[start : start + len(chunk)] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return features


def synthetic_features(
    pixels: int, groups: int, channels: int, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) float32 unit features and (N,) int64 true groups, every pixel drawn independently."""
    rng = np.random.default_rng(seed)
    centres, weights = group_model(groups, channels, rng)
    truth = rng.choice(groups, size=pixels, p=weights)
    return noisy_features(truth, centres, noise, rng), truth


def synthetic_scene_features(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """(S, H, W, C) features and (S, H, W) true groups laid out as 28 x 28-pixel blocks, so that
    groups are spatially coherent (as objects are) and each appears in several views."""
    rng = np.random.default_rng(args.seed)
    centres, weights = group_model(args.groups, args.channels, rng)
    block = 28
    cells = rng.choice(args.groups, size=(SCENE_VIEWS, SCENE_HEIGHT // block, SCENE_WIDTH // block), p=weights)
    truth = cells.repeat(block, 1).repeat(block, 2)
    features = noisy_features(truth.reshape(-1), centres, args.noise, rng)
    return features.reshape(truth.shape + (-1,)), truth


def subsample_ari(truth: np.ndarray, labels: np.ndarray, seed: int) -> float:
    rows = np.random.default_rng(seed).choice(len(truth), size=min(ARI_SUBSAMPLE, len(truth)), replace=False)
    return float(adjusted_rand_score(truth[rows], labels[rows]))


def time_clustering(pixels: int, device: str, args: argparse.Namespace) -> dict:
    features, truth = synthetic_features(pixels, args.groups, args.channels, args.noise, args.seed)
    config = InstanceConfig(device=device)
    _synchronise(device)
    start = time.perf_counter()
    labels = cluster_features(features, config=config)
    _synchronise(device)
    seconds = time.perf_counter() - start
    return _row(f"cluster_features, {pixels:,} px", pixels, seconds, truth, labels, args.seed)


def time_sample_tree(device: str, args: argparse.Namespace) -> list[dict]:
    """HDBSCAN of one sample as the first round draws it: on the host, and on ``device`` when a GPU."""
    features, truth = synthetic_features(10_000, args.groups, args.channels, args.noise, args.seed)
    min_cluster_size = 10
    rows, host = [], None
    for where in [None] + ([torch.device(device)] if device == "cuda" else []):
        sample_labels(features[:2000], min_cluster_size, where)  # warm-up: kernels, allocator
        _synchronise(device)
        start = time.perf_counter()
        labels = sample_labels(features, min_cluster_size, where)
        seconds = time.perf_counter() - start
        name = f"HDBSCAN of the sample, {'host kd-tree' if where is None else 'device tree'}"
        row = _row(name, len(features), seconds, truth, labels + 1, args.seed)
        if host is None:
            host = labels
        else:
            row["ari_against_host"] = round(float(adjusted_rand_score(host, labels)), 4)
        rows.append(row)
    return rows


def time_extraction(device: str, args: argparse.Namespace) -> dict:
    features, truth = synthetic_scene_features(args)
    predictions = _scene(features)
    _synchronise(device)
    start = time.perf_counter()
    instances = extract_instances(predictions, InstanceConfig(device=device))
    _synchronise(device)
    seconds = time.perf_counter() - start
    name = f"extract_instances, {SCENE_VIEWS} x {SCENE_HEIGHT} x {SCENE_WIDTH}"
    return _row(name, truth.size, seconds, truth.reshape(-1), instances.labels.reshape(-1), args.seed)


def _scene(features: np.ndarray) -> Predictions:
    """Predictions around (S, H, W, C) features; geometry is random (only the features matter)."""
    views, height, width, _ = features.shape
    rng = np.random.default_rng(0)
    ones = np.ones((views, height, width), np.float32)
    return Predictions(
        images=rng.random((views, height, width, 3), dtype=np.float32),
        extrinsic=np.tile(np.eye(3, 4, dtype=np.float32), (views, 1, 1)),
        intrinsic=np.tile(np.eye(3, dtype=np.float32), (views, 1, 1)),
        depth=ones,
        depth_conf=ones,
        world_points=rng.normal(size=(views, height, width, 3)).astype(np.float32),
        world_points_conf=ones + rng.random((views, height, width), dtype=np.float32),
        instance_feat=features,
        pose_enc=np.zeros((views, 9), np.float32),
    )


def _row(name: str, pixels: int, seconds: float, truth: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    return {
        "task": name,
        "pixels": pixels,
        "seconds": round(seconds, 3),
        "ari": round(subsample_ari(truth, labels, seed), 4),
        "instances": int(labels.max()),
        "noise_fraction": round(float(np.mean(labels == 0)), 5),
    }


def _synchronise(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def run_device(device: str, args: argparse.Namespace) -> dict:
    if device == "cuda":
        cluster_features(
            synthetic_features(20_000, 4, args.channels, args.noise, 1)[0],
            config=InstanceConfig(device=device),
        )
    rows = time_sample_tree(device, args)
    rows += [time_clustering(pixels, device, args) for pixels in args.sizes]
    if not args.skip_scene:
        rows.append(time_extraction(device, args))
    return {
        "device": device,
        "device_name": device_name(device),
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "hdbscan": importlib.metadata.version("hdbscan"),  # the instance step's HDBSCAN since 2026-12-03
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2),  # other processes on the machine
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": {
            "groups": args.groups,
            "channels": args.channels,
            "noise": args.noise,
            "seed": args.seed,
        },
        "config": InstanceConfig(device=device).__dict__,
        "rows": rows,
    }


def print_table(result: dict) -> None:
    print(f"\n{result['device_name']} ({result['device']}), torch {result['torch']}")
    print(f"{'task':<40} {'pixels':>12} {'seconds':>9} {'ARI':>7} {'instances':>10} {'noise':>8} {'vs host':>8}")
    for row in result["rows"]:
        print(
            f"{row['task']:<40} {row['pixels']:>12,} {row['seconds']:>9.2f} {row['ari']:>7.4f} "
            f"{row['instances']:>10} {row['noise_fraction']:>8.4f} {row.get('ari_against_host', ''):>8}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--groups", type=int, default=40)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-scene", action="store_true", help="skip the 12-view extract_instances row")
    args = parser.parse_args()
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    RESULTS.mkdir(parents=True, exist_ok=True)
    for device in devices:
        if device == "cuda" and not torch.cuda.is_available():
            print("no CUDA device: skipping cuda")
            continue
        result = run_device(device, args)
        print_table(result)
        (RESULTS / f"instance_clustering_{device}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
