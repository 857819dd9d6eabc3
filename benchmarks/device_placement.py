"""Where each stage computes when a GPU is visible: `--device cpu` must keep synth, the network
and the instance step of `iggt eval` off the GPU, `--device cuda` must use it, and a GPU the
machine lacks must be one line. Needs a CUDA machine; writes results/device_placement_cuda.json.

    PYTHONPATH=src python benchmarks/device_placement.py
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from iggt.cli.main import main
from iggt.eval.run_info import device_description, software_versions

RESULTS = Path(__file__).parent / "results" / "device_placement_cuda.json"


def gpu_bytes_during(argv: list[str]) -> tuple[int, int]:
    """(exit code, peak GPU bytes allocated by this process while ``iggt argv`` ran in it)."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    code = main(argv)
    return code, torch.cuda.max_memory_allocated() - before


def one_line_error(argv: list[str]) -> dict:
    run = subprocess.run([sys.executable, "-m", "iggt.cli.main", *argv], capture_output=True, text=True)
    return {"exit_code": run.returncode, "stderr": run.stderr.strip()}


def main_benchmark() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU")
    work = Path(tempfile.mkdtemp())
    scenes = ["synth", "--scenes", "2", "--views", "4", "--size", "112x112", "--out", str(work / "scenes")]
    eval_args = ["eval", "--data", str(work / "scenes"), "--model", "iggt-small", "--quiet"]
    rows = {}
    for device in ("cpu", "cuda"):
        code, peak = gpu_bytes_during([*scenes, "--device", device, "--overwrite"])
        rows[f"synth --device {device}"] = {"exit_code": code, "gpu_bytes": peak}
        code, peak = gpu_bytes_during([*eval_args, "--out", str(work / f"eval_{device}"), "--device", device])
        rows[f"eval --device {device}"] = {"exit_code": code, "gpu_bytes": peak}
    errors = {
        spec: one_line_error([*eval_args, "--out", str(work / "e"), "--device", spec]) for spec in ("cuda:7", "cuda:x")
    }
    print("| command | exit | GPU bytes |\n|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['exit_code']} | {row['gpu_bytes']:,} |")
    for spec, error in errors.items():
        print(f"| eval --device {spec} | {error['exit_code']} | {error['stderr']} |")
    record = {
        "device": device_description(torch.device("cuda")),
        "versions": software_versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "rows": rows,
        "errors": errors,
    }
    RESULTS.write_text(json.dumps(record, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main_benchmark()
