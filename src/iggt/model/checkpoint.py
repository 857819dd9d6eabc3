"""Reading and writing model weights: official IGGT, VGGT-1B and our own safetensors files.

Accepted inputs: ``.safetensors`` (ours embed the IGGTConfig as JSON in the metadata),
``.pt`` / ``.pth`` / ``.bin`` / ``.ckpt`` torch pickles holding a state_dict, possibly wrapped in
a dict ("model", "state_dict", ...) and possibly with ``module.`` prefixes (DDP), or a Hugging
Face hub id ("owner/name") when huggingface_hub is installed. Loads are strict by default; a
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

CONFIG_METADATA_KEY = "iggt_config"
WEIGHTS_FILENAME = "model.safetensors"
WRAPPER_KEYS = ("model", "state_dict", "model_state_dict", "module", "net", "weights")
STRIPPED_PREFIXES = ("module.", "_orig_mod.")
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
# Modules IGGT adds to VGGT: a VGGT-1B checkpoint loads without them and they start fresh.
INSTANCE_PREFIXES = ("part_adaptor.", "part_head.")
STRICT_FIX = "pick the matching preset or pass strict=False"
HUB_TIMEOUT_S = 10.0
"""Seconds to wait for the hub before saying it cannot be reached (no retries)."""


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


def resolve_checkpoint(path_or_hub_id: str | Path) -> Path:
    """A local weights file for a path, a directory holding model.safetensors, or a hub id."""
    path = Path(path_or_hub_id).expanduser()
    if path.is_dir():
        if not (path / WEIGHTS_FILENAME).is_file():
            held = sorted(p.name for p in path.iterdir())
            raise CheckpointError(
                f"folder {path_or_hub_id} has no {WEIGHTS_FILENAME} (it holds {held[:6] or 'nothing'}); "
                "pass the folder that has it, or the weights file itself"
            )
        path = path / WEIGHTS_FILENAME
    if path.is_file():
        return path
    text = str(path_or_hub_id)
    if _looks_like_hub_id(text):
        return _download_from_hub(text)
    raise CheckpointError(f"checkpoint {text!r} does not exist; pass a .safetensors/.pt/.pth file or its folder")


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


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "~")) and "\\" not in text


def _download_from_hub(repo_id: str) -> Path:
    """The weights of ``repo_id``: from the local cache when there, else one quick request to the
    hub (no retries) before downloading, so a machine without network hears so at once."""
    try:
        import huggingface_hub
        from huggingface_hub import constants
    except ImportError:
        raise CheckpointError(
            f"{repo_id!r} is not a local file and huggingface_hub is not installed; "
            "download the weights and pass the local file path"
        ) from None
    cached = _cached_weights(huggingface_hub, repo_id)
    if cached is not None:
        return cached
    if constants.HF_HUB_OFFLINE:
        raise CheckpointError(
            f"{repo_id!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE says there is no network; "
            "download the weights on a connected machine and pass the local file path"
        )
    try:
        info = huggingface_hub.model_info(repo_id, timeout=HUB_TIMEOUT_S)
        files = [sibling.rfilename for sibling in info.siblings or ()]
        name = WEIGHTS_FILENAME if WEIGHTS_FILENAME in files else _pick_weights_file(files)
        return Path(huggingface_hub.hf_hub_download(repo_id, name))
    except CheckpointError:
        raise
    except Exception as error:  # network, auth and missing-repo errors all mean the same to the user
        if _is_connection_error(error):
            raise CheckpointError(
                f"cannot reach the Hugging Face hub ({constants.ENDPOINT}) for {repo_id!r}: no network "
                f"({type(error).__name__}); download the weights and pass the local file path"
            ) from None
        raise CheckpointError(
            f"cannot fetch {repo_id!r} from the Hugging Face hub ({type(error).__name__}); "
            "check the id, or download the weights and pass the local file path"
        ) from error


def _cached_weights(huggingface_hub, repo_id: str) -> Path | None:
    """A weights file of ``repo_id`` already in the local Hugging Face cache, or None."""
    try:
        folder = Path(huggingface_hub.snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError) or a cache without this snapshot
        return None
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    try:
        name = WEIGHTS_FILENAME if WEIGHTS_FILENAME in files else _pick_weights_file(files)
    except CheckpointError:
        return None
    return folder / name


def _is_connection_error(error: BaseException) -> bool:
    """True when ``error`` (or its cause) means the host could not be reached or did not answer."""
    while error is not None:
        names = {cls.__name__ for cls in type(error).__mro__}
        if isinstance(error, OSError) or any("Connect" in n or "Timeout" in n for n in names):
            return True
        error = error.__cause__ or error.__context__
    return False


def _pick_weights_file(files: list[str]) -> str:
    for suffix in (".safetensors", *TORCH_SUFFIXES):
        candidates = sorted(f for f in files if f.endswith(suffix))
        if candidates:
            return candidates[0]
    raise CheckpointError(f"no weights file (.safetensors/.pt/.pth) in hub files {files[:8]}; pass a local file")
