"""Reading and writing model weights files: official IGGT, VGGT-1B and our own safetensors files.

Accepted files: ``.safetensors`` (ours embed the IGGTConfig as JSON in the metadata),
``.pt`` / ``.pth`` / ``.bin`` / ``.ckpt`` torch pickles holding a state_dict, possibly wrapped in
a dict ("model", "state_dict", ...) and possibly with ``module.`` prefixes (DDP). Which file a
name, folder or hub id means is decided in :mod:`iggt.model.hub`. Loads are strict by default; a
tensor of the wrong shape always raises CheckpointError naming the key and both shapes.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from iggt.errors import CheckpointError
from iggt.errors import first_line as _first_line
from iggt.model.hub import TORCH_SUFFIXES, WEIGHTS_FILENAME

CONFIG_METADATA_KEY = "iggt_config"
WRAPPER_KEYS = ("model", "state_dict", "model_state_dict", "module", "net", "weights")
STRIPPED_PREFIXES = ("module.", "_orig_mod.")
# Modules IGGT adds to VGGT: a VGGT-1B checkpoint loads without them and they start fresh.
INSTANCE_PREFIXES = ("part_adaptor.", "part_head.")
STRICT_FIX = "pick the matching preset or pass strict=False"


@dataclass
class LoadReport:
    """What a load did: keys the model lacked, keys the file had in excess, modules left fresh."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    fresh_modules: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.missing)} missing", f"{len(self.unexpected)} unexpected"]
        if self.fresh_modules:
            parts.append(f"freshly initialised: {', '.join(self.fresh_modules)}")
        return "; ".join(parts)


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[dict, dict | None]:
    """(state_dict with wrappers and prefixes removed, embedded config dict or None)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist; pass an existing weights file")
    if path.suffix == ".safetensors":
        state_dict, config = _read_safetensors(path, map_location)
    elif path.suffix in TORCH_SUFFIXES:
        state_dict, config = _read_torch(path, map_location), None
    else:
        raise CheckpointError(
            f"checkpoint {path.name!r} has an unknown suffix; use one of .safetensors {' '.join(TORCH_SUFFIXES)}"
        )
    check_finite_tensors(state_dict, f"checkpoint {path.name!r}", "re-download it or load an earlier checkpoint")
    return state_dict, config


def check_finite_tensors(tensors: Mapping[str, torch.Tensor], source: str, fix: str) -> None:
    """Raise CheckpointError naming the first floating-point tensor holding NaN or infinity."""
    key = first_non_finite(tensors)
    if key is not None:
        bad = int((~torch.isfinite(tensors[key])).sum())
        raise CheckpointError(
            f"{source}: tensor {key!r} is not finite ({bad} of {tensors[key].numel()} values NaN or inf); {fix}"
        )


def first_non_finite(tensors: Mapping[str, torch.Tensor]) -> str | None:
    """The key of the first floating-point tensor holding NaN or infinity, or None."""
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return key
    return None


def clean_state_dict(loaded: Mapping) -> dict[str, torch.Tensor]:
    """Unwrap {"model": {...}}-style containers and strip ``module.`` / ``_orig_mod.`` prefixes."""
    state = loaded
    while not _is_state_dict(state):
        inner = next((state[k] for k in WRAPPER_KEYS if isinstance(state.get(k), Mapping)), None)
        if inner is None:
            raise CheckpointError(
                f"checkpoint holds no state_dict (top-level keys: {sorted(state)[:8]}); save model.state_dict()"
            )
        state = inner
    cleaned = {}
    for key, value in state.items():
        for prefix in STRIPPED_PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix) :]
        cleaned[key] = value
    return cleaned


def is_vggt_state_dict(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for a VGGT checkpoint: the trunk is there but not the instance adaptor and head."""
    has_trunk = "aggregator.camera_token" in state_dict
    return has_trunk and not any(key.startswith(INSTANCE_PREFIXES) for key in state_dict)


def check_state_dict(
    expected: Mapping[str, torch.Tensor],
    state_dict: Mapping[str, torch.Tensor],
    strict: bool = True,
    allowed_missing: Iterable[str] = (),
) -> LoadReport:
    """Compare keys and shapes; raise CheckpointError on a shape mismatch, or (strict) on any
    missing or unexpected key whose prefix is not in ``allowed_missing``."""
    for key, tensor in state_dict.items():
        if key in expected and tuple(expected[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"checkpoint tensor {key!r} has shape {tuple(tensor.shape)} but the model expects "
                f"{tuple(expected[key].shape)}; load it into the matching preset/config"
            )
    allowed = tuple(allowed_missing)
    report = LoadReport(
        missing=sorted(k for k in expected if k not in state_dict),
        unexpected=sorted(k for k in state_dict if k not in expected),
    )
    blocking_missing = [k for k in report.missing if not (allowed and k.startswith(allowed))]
    if strict and (blocking_missing or report.unexpected):
        raise CheckpointError(
            f"checkpoint does not match the model: {len(blocking_missing)} missing (e.g. "
            f"{blocking_missing[:3]}), {len(report.unexpected)} unexpected (e.g. {report.unexpected[:3]}); "
            f"{STRICT_FIX}",
            {STRICT_FIX: "strict"},
        )
    return report


def save_checkpoint(state_dict: Mapping[str, torch.Tensor], config: dict, path: str | Path) -> Path:
    """Write weights + config JSON to ``path`` (a .safetensors file, or a folder -> model.safetensors)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        path.mkdir(parents=True, exist_ok=True)
        path = path / WEIGHTS_FILENAME
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.detach().contiguous().cpu() for key, value in state_dict.items()}
    metadata = {"format": "pt", CONFIG_METADATA_KEY: json.dumps(config)}
    temporary = path.with_suffix(".safetensors.tmp")
    save_file(tensors, str(temporary), metadata=metadata)
    temporary.replace(path)
    return path


def _is_state_dict(state: Mapping) -> bool:
    return bool(state) and all(isinstance(v, torch.Tensor) for v in state.values())


def _read_safetensors(path: Path, map_location) -> tuple[dict, dict | None]:
    device = str(torch.device(map_location))
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path), device=device)
    except Exception as error:  # safetensors raises several unrelated types for corrupt files
        raise CheckpointError(
            f"cannot read {path.name!r} as safetensors ({_first_line(error)}); re-download or re-save it"
        ) from error
    return clean_state_dict(tensors), _embedded_config(path, metadata)


def _embedded_config(path: Path, metadata: dict) -> dict | None:
    """The IGGTConfig dict of our safetensors metadata; None when the file carries none."""
    if CONFIG_METADATA_KEY not in metadata:
        return None
    try:
        config = json.loads(metadata[CONFIG_METADATA_KEY])
    except json.JSONDecodeError as error:
        raise CheckpointError(
            f"the model config embedded in {path.name!r} is not valid JSON ({error.msg} at character "
            f"{error.pos}); re-save the weights with IGGT.save_pretrained"
        ) from None
    if not isinstance(config, dict):
        raise CheckpointError(
            f"the model config embedded in {path.name!r} is a {type(config).__name__}, not a mapping; "
            "re-save the weights with IGGT.save_pretrained"
        )
    return config


def _read_torch(path: Path, map_location) -> dict:
    try:
        # Memory-map new-style (zip) files so a 5 GB checkpoint is not copied before assignment.
        mmap = zipfile.is_zipfile(path)
        loaded = torch.load(str(path), map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as error:  # torch.load raises pickle, zip and runtime errors alike
        raise CheckpointError(
            f"cannot read {path.name!r} as a torch checkpoint ({_first_line(error)}); re-download or re-save it"
        ) from error
    if not isinstance(loaded, Mapping):
        raise CheckpointError(
            f"{path.name!r} holds a {type(loaded).__name__}, not a state_dict; save model.state_dict()"
        )
    return clean_state_dict(loaded)
