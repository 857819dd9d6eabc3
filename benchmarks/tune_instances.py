"""Choose the instance-extraction defaults on real network output, away from the benchmark.

Runs a model once per scene of a tuning set made from TRAINING seeds (never the held-out
benchmark), e.g. ``iggt synth --scenes 8 --views 8 --size 224x224 --seed 777 --out data/instance-tuning``,
then scores a grid of InstanceConfig settings with the benchmark's instance metrics (T-mIoU,
T-SR, cross-view ID consistency; ``iggt.eval.benchmark``). Prints a table sorted by T-mIoU and
writes benchmarks/results/instance_tuning_<model>.json.

Usage:
    python benchmarks/tune_instances.py --data data/instance-tuning --model iggt-small
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
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
GRID = {
    "use_positions": [False, True],
    "position_weight": [0.25, 0.5],
    "merge_threshold": [0.1, 0.2, 0.35],
    "min_instance_size": [0.001, 0.003],
}
METRICS = ("t_miou", "t_sr", "id_consistency")


def grid_configs() -> dict[str, InstanceConfig]:
    configs = {}
    for values in itertools.product(*GRID.values()):
        fields = dict(zip(GRID, values, strict=True))
        if not fields["use_positions"] and fields["position_weight"] != GRID["position_weight"][0]:
            continue  # the weight only matters with positions
        name = ", ".join(f"{key}={value}" for key, value in fields.items())
        configs[name] = InstanceConfig(**fields)
    return configs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", default="iggt-small")
    args = parser.parse_args()
    model = load_model(args.model)
    configs = grid_configs()
    segmenters = {name: (lambda p, c=config: extract_instances(p, c).labels) for name, config in configs.items()}
    config = BenchmarkConfig(tasks=("instances",), img_size=model.config.img_size, patch_size=model.config.patch_size)
    rows = run_benchmark(
        list_scenes(args.data), read_scene, lambda images: run_model(model, images, device="cpu"), segmenters, config
    )
    table = []
    for name, instance_config in configs.items():
        mine = [row for row in rows if row["method"] == name]
        means = {metric: float(np.mean([row[metric] for row in mine])) for metric in METRICS}
        table.append({"config": asdict(instance_config), "name": name, **means})
    table.sort(key=lambda entry: -entry["t_miou"])
    print(f"{'T-mIoU':>7} {'T-SR':>6} {'ID cons.':>8}  setting")
    for entry in table:
        scores = f"{100 * entry['t_miou']:7.2f} {100 * entry['t_sr']:6.2f} {100 * entry['id_consistency']:8.2f}"
        print(f"{scores}  {entry['name']}")
    result = {
        "model": args.model,
        "data": args.data.name,
        "num_scenes": len(list_scenes(args.data)),
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "rows": table,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"instance_tuning_{Path(args.model).stem}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
