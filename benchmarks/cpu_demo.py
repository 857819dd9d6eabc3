"""The demo on the CPU, end to end: `iggt reconstruct --example --device cpu` (``small``, 8 views at
224 x 224), timed by its own timing line.

Each run is a fresh process, as a user's is. One warm-up run first fills the file cache (weights,
images, the libraries); then ``--runs`` timed runs. The table shows each stage's median over the
runs and the median "total" of the timing line (from the first read to the last file written; the
Python start-up and imports before it are shown apart, as "process"). Other work on the machine
slows every stage, so the 1-minute load average before each run is recorded beside it.

On a shared machine whose speed drifts from one minute to the next, ``--against SRC`` (another
checkout's ``src`` folder, e.g. a clone at an older commit) times that code too, its runs
interleaved with this checkout's (this, other, this, ...), so that both see the same load; its
medians are recorded beside this checkout's.

Usage: python benchmarks/cpu_demo.py [--runs 3] [--out FILE] [--against OTHER/src]
Prints a table and writes benchmarks/results/cpu_demo_cpu.json (or FILE: one machine's record each).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
TARGET_S = 5.0
"""Issue 20's target for the demo's total on the 2-core CPU."""
DEMO = "import sys; from iggt.cli.main import main; sys.exit(main())"
"""As the `iggt` console script runs it: main() reads sys.argv and so owns the process."""
THIS_SRC = Path(__file__).resolve().parent.parent / "src"
TIME_LINE = re.compile(r"time: (?P<stages>.*) \(total (?P<total>[\d.]+) s\)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs after the warm-up")
    parser.add_argument("--out", type=Path, default=RESULTS / "cpu_demo_cpu.json", help="results file")
    parser.add_argument("--against", type=Path, help="another checkout's src folder, timed interleaved")
    args = parser.parse_args()
    if args.against is not None and not (args.against / "iggt" / "__init__.py").is_file():
        raise SystemExit(f"--against {args.against}: no iggt package there; pass a checkout's src folder")
    sources = {"this": THIS_SRC, **({"against": args.against.resolve()} if args.against else {})}
    runs = {name: [] for name in sources}
    with tempfile.TemporaryDirectory(prefix="iggt-cpu-demo-") as scratch:
        for name, src in sources.items():
            run_demo(Path(scratch) / f"warm-up-{name}", src)
        for index in range(args.runs):
            for name, src in sources.items():
                runs[name].append(run_demo(Path(scratch) / f"{name}{index}", src))
    summaries = {name: summarise(trials) for name, trials in runs.items()}
    stages = list(summaries["this"]["median_stages_s"])
    print(f"{'stage':<28} " + " ".join(f"{name + ' s':>9}" for name in summaries))
    for stage in stages:
        print(f"{stage:<28} " + " ".join(f"{s['median_stages_s'][stage]:>9.1f}" for s in summaries.values()))
    totals = " ".join(f"{s['median_total_s']:>9.1f}" for s in summaries.values())
    print(f"{'total (timing line)':<28} {totals}   target {TARGET_S:.1f} s")
    print(f"{'process (with start-up)':<28} " + " ".join(f"{s['median_process_s']:>9.1f}" for s in summaries.values()))
    loads = [run["load_average_1min"] for trials in runs.values() for run in trials]
    print("load average before each run: " + ", ".join(f"{load:.2f}" for load in loads))
    this = summaries["this"]
    medians, total, process = this["median_stages_s"], this["median_total_s"], this["median_process_s"]
    record = {
        "benchmark": "cpu_demo",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": versions(),
        "command": "iggt reconstruct --example --device cpu --overwrite --quiet",
        "preset": "small",
        "frames": 8,
        "height": 224,
        "width": 224,
        "runs": len(runs),
        "median_stages_s": medians,
        "median_total_s": total,
        "median_process_s": process,
        "target_s": TARGET_S,
        "met": total <= TARGET_S,
        "trials": runs["this"],
    }
    if args.against is not None:
        record["against"] = {"code": describe_checkout(args.against), **summaries["against"], "trials": runs["against"]}
    path = args.out
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")


def summarise(runs: list[dict]) -> dict:
    """Each stage's median, and the medians of the total and of the process time, over the runs."""
    stages = list(runs[0]["stages_s"])
    return {
        "median_stages_s": {stage: statistics.median(run["stages_s"][stage] for run in runs) for stage in stages},
        "median_total_s": statistics.median(run["total_s"] for run in runs),
        "median_process_s": statistics.median(run["process_s"] for run in runs),
    }


def run_demo(out_dir: Path, src: Path) -> dict:
    """One demo in a fresh process importing iggt from ``src``: its timing line's stages and total,
    the process time, the load."""
    load = os.getloadavg()[0]
    command = [sys.executable, "-c", DEMO, "reconstruct", "--example", "--out", str(out_dir), "--device", "cpu"]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    result = subprocess.run(
        [*command, "--overwrite", "--quiet"], capture_output=True, text=True, check=True, env=environment
    )
    process = time.perf_counter() - start
    match = TIME_LINE.search(result.stdout)
    if match is None:
        raise SystemExit(f"no timing line in the demo's output:\n{result.stdout}")
    stages = {}
    for part in match["stages"].split(", "):
        stage, seconds = part.rsplit(" ", 2)[:2]
        stages[stage] = float(seconds)
    return {
        "stages_s": stages,
        "total_s": float(match["total"]),
        "process_s": round(process, 3),
        "load_average_1min": round(load, 2),
    }


def describe_checkout(src: Path) -> str:
    """The commit of the checkout holding ``src`` (not its path, which is this machine's), noting
    local changes."""
    git = ["git", "-C", str(src)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if commit.returncode != 0:
        return "not a git checkout"
    changed = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    files = [line[3:] for line in changed.stdout.splitlines()]
    return f"commit {commit.stdout.strip()}" + (f", with local changes to {', '.join(files)}" if files else "")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def versions() -> dict:
    import numpy
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}


if __name__ == "__main__":
    main()
