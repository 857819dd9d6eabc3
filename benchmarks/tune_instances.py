"""Choose the instance-extraction defaults on real network output, away from the benchmark.

Runs a model once per scene of a tuning set made from TRAINING seeds (never the held-out
benchmark), e.g. ``iggt synth --scenes 8 --views 8 --size 224x224 --seed 777 --out data/instance-tuning``,
then scores a grid of InstanceConfig settings with the benchmark's instance metrics (T-mIoU,
T-SR, cross-view ID consistency; ``iggt.eval.benchmark``) and the instance step's CPU seconds per
scene. Prints a table sorted by T-mIoU and writes benchmarks/results/instance_tuning_<model>.json.
``--grid sampling`` instead scores the clustering's sample size (HDBSCAN's cost, most of the instance
step's cost on the GPU, docs/performance.md) at the default settings, and writes
instance_sampling_<model>.json.
``--grid filtering`` scores what follows the clustering (the noise distance, the majority filter's
radius, the smallest instance, the merge threshold) and writes instance_filtering_<model>.json.

Usage:
    python benchmarks/tune_instances.py --data data/instance-tuning --model iggt-small
    python benchmarks/tune_instances.py --data data/instance-tuning --model iggt-small --grid sampling
    python benchmarks/tune_instances.py --data data/instance-tuning --model iggt-small --grid filtering
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from iggt.eval.benchmark import BenchmarkConfig, run_benchmark
from iggt.inference.runner import run_model
from iggt.instances import InstanceConfig, extract_instances
from iggt.io.scene_format import list_scenes, read_scene
from iggt.model.hub import load_model

RESULTS = Path(__file__).parent / "results"
GRIDS = {
    "defaults": {
        "use_positions": [False, True],
        "position_weight": [0.25, 0.5],
        "merge_threshold": [0.1, 0.2, 0.35],
        "min_instance_size": [0.001, 0.003],
    },
    # refine_rounds 0 and 1 gave the same labels and time on the tuning set (few pixels are left
    # for the second round), so only the first round's sample size is scored
    "sampling": {"sample_size": [10000, 5000, 3000]},
    # what happens after HDBSCAN: the noise cut, the majority filter's window and the merge of centres
    "filtering": {
        "noise_distance": [0.5, None],
        "majority_radius": [0, 1, 2],
        "min_instance_size": [0.0003, 0.001],
        "merge_threshold": [0.15, 0.2],
    },
}
RESULT_NAMES = {"defaults": "instance_tuning", "sampling": "instance_sampling", "filtering": "instance_filtering"}
METRICS = ("t_miou", "t_sr", "id_consistency")


def grid_configs(grid: dict[str, list]) -> dict[str, InstanceConfig]:
    configs = {}
    for values in itertools.product(*grid.values()):
        fields = dict(zip(grid, values, strict=True))
        if not fields.get("use_positions", True) and fields["position_weight"] != grid["position_weight"][0]:
            continue  # the weight only matters with positions
        name = ", ".join(f"{key}={value}" for key, value in fields.items())
        configs[name] = InstanceConfig(**fields)
    return configs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", default="iggt-small")
    parser.add_argument("--grid", choices=sorted(GRIDS), default="defaults")
    args = parser.parse_args()
    model = load_model(args.model)
    configs = grid_configs(GRIDS[args.grid])
    seconds = {name: [] for name in configs}

    def segmenter(predictions, name, instance_config):
        start = time.perf_counter()
        labels = extract_instances(predictions, instance_config).labels
        seconds[name].append(time.perf_counter() - start)
        return labels

    segmenters = {name: (lambda p, n=name, c=config: segmenter(p, n, c)) for name, config in configs.items()}
    config = BenchmarkConfig(tasks=("instances",), img_size=model.config.img_size, patch_size=model.config.patch_size)
    rows = run_benchmark(
        list_scenes(args.data), read_scene, lambda images: run_model(model, images, device="cpu"), segmenters, config
    )
    table = []
    for name, instance_config in configs.items():
        mine = [row for row in rows if row["method"] == name]
        means = {metric: float(np.mean([row[metric] for row in mine])) for metric in METRICS}
        mean_seconds = float(np.mean(seconds[name]))
        table.append({"config": asdict(instance_config), "name": name, **means, "seconds": mean_seconds})
    table.sort(key=lambda entry: -entry["t_miou"])
    print(f"{'T-mIoU':>7} {'T-SR':>6} {'ID cons.':>8} {'s/scene':>7}  setting")
    for entry in table:
        scores = f"{100 * entry['t_miou']:7.2f} {100 * entry['t_sr']:6.2f} {100 * entry['id_consistency']:8.2f}"
        print(f"{scores} {entry['seconds']:7.2f}  {entry['name']}")
    result = {
        "model": args.model,
        "data": args.data.name,
        "num_scenes": len(list_scenes(args.data)),
        "grid": args.grid,
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "rows": table,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{RESULT_NAMES[args.grid]}_{Path(args.model).stem}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
