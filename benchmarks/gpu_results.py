"""Where the GPU benchmarks write: ``benchmarks/results/<stem>_<gpu model>.json`` (e.g. ``_h200``).

Imports nothing of iggt, so that the official side-by-side harness can use it beside the release.
"""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def gpu_result_path(stem: str, device_name: str) -> Path:
    """The results file of benchmark ``stem`` on the GPU ``torch.cuda.get_device_name()`` names."""
    model = device_name.split()[1].lower() if " " in device_name else "cuda"
    return RESULTS / f"{stem}_{model}.json"
