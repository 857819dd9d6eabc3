"""Held-out numbers of the shipped iggt-text model on the engine's benchmark scenes.

    python benchmarks/iggt_text_heldout.py --benchmark synthetic-val --scenes 4
    python benchmarks/iggt_text_heldout.py --benchmark synthetic-test --scenes 4

Recognition alone: every scene's ground-truth instance masks and geometry stand in for the
network's, so the oracle would score 100 and the rows measure only how iggt-text names the
instances (closed set over the engine's 23 class names, prompt "a photo of a {}.", crops of the
3 best views). The scenes are rendered here from the benchmark's reserved seeds (the same as
`iggt synth --benchmark NAME`). Writes benchmarks/results/iggt-text_recognition_NAME.{json,md}
with the device, versions and date. tests/tasks/test_iggt_text.py re-computes synthetic-val's scene 0.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
from pathlib import Path

import numpy as np
import torch

from iggt.eval.run_info import software_versions
from iggt.eval.semantic import recognition_scores
from iggt.synth.benchmarks import get_benchmark
from iggt.synth.generate import render_scenes
from iggt.tasks.backends import load_backend
from iggt.tasks.instance_classes import backend_labeller

RESULTS = Path(__file__).resolve().parent / "results"
NETWORK_SIZE = 224  # iggt-small's input: the benchmark's images pass through unchanged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", default="synthetic-val", help="synthetic-val (default) or synthetic-test")
    parser.add_argument("--scenes", type=int, default=4, help="the benchmark's first N scenes")
    args = parser.parse_args()
    torch.set_num_threads(2)
    benchmark = get_benchmark(args.benchmark)
    labeller = backend_labeller(load_backend())
    rows = []
    seeds = benchmark.seeds()[: args.scenes]
    for index, scene in enumerate(render_scenes(seeds, benchmark.num_views, benchmark.image_size, scenes_per_batch=1)):
        scores = recognition_scores(scene, labeller, NETWORK_SIZE)
        rows.append({"scene": f"scene_{index:06d}", "seed": seeds[index], **scores})
        print(json.dumps(rows[-1]), flush=True)
    keys = ("miou_2d", "macc_2d", "miou_3d", "macc_3d")
    means = {key: float(np.mean([row[key] for row in rows])) for key in keys}
    document = {
        "benchmark": benchmark.name,
        "protocol": "ground-truth masks and geometry; closed set over the engine's class names; crops",
        "backend": "iggt-text (shipped)",
        "num_scenes": len(rows),
        "num_views": benchmark.num_views,
        "means": means,
        "scenes": rows,
        "device": f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "versions": software_versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": f"python benchmarks/iggt_text_heldout.py --benchmark {benchmark.name} --scenes {args.scenes}",
    }
    RESULTS.mkdir(exist_ok=True)
    stem = f"iggt-text_recognition_{benchmark.name}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(document, indent=1) + "\n")
    lines = ["| scene | " + " | ".join(f"{k} (%)" for k in keys) + " |", "|---|" + "---|" * len(keys)]
    lines += [f"| {r['scene']} | " + " | ".join(f"{100 * r[k]:.2f}" for k in keys) + " |" for r in rows]
    lines.append("| **mean** | " + " | ".join(f"**{100 * means[k]:.2f}**" for k in keys) + " |")
    header = (
        f"# iggt-text on {benchmark.name}: recognition alone ({len(rows)} scenes)\n\n"
        f"Ground-truth masks and geometry, so the oracle would score 100. `{document['command']}`, "
        f"{document['device']}, torch {torch.__version__}, {document['date']}.\n\n"
    )
    (RESULTS / f"{stem}.md").write_text(header + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
