"""What a benchmark report records about its run, so that a table can be reproduced and compared."""

from __future__ import annotations

import dataclasses
import datetime
import platform
import sys
from pathlib import Path

import numpy as np
import scipy
import torch


def software_versions() -> dict[str, str]:
    """Versions of Python and of the libraries the metrics depend on."""
    from iggt import __version__

    return {
        "iggt": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "platform": platform.platform(),
    }


def device_description(device: torch.device) -> str:
    """ "cpu (<processor>)" or "cuda:N (<GPU name>)"."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"cpu ({platform.processor() or platform.machine()})"


def run_metadata(
    model: str,
    data: Path,
    data_format: str,
    device: torch.device,
    config,
    instance_config,
    num_scenes: int,
) -> dict:
    """The header of summary.json: model, data, protocol settings, versions, date and device."""
    return {
        "model": model,
        "data": Path(data).resolve().name,  # the folder's name: reports carry no machine paths
        "data_format": data_format,
        "num_scenes": num_scenes,
        "tasks": list(config.tasks),
        "config": dataclasses.asdict(config),
        "instance_config": dataclasses.asdict(instance_config),
        "versions": software_versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device_description(device),
    }
