"""Training checkpoints: save, find, load, and split into small parts for moving between machines.

A checkpoint is a directory ``<output_dir>/checkpoints/step_NNNNNNN/`` holding

- ``model.safetensors``: the weights with the IGGTConfig embedded (IGGT.save_pretrained format,
  so ``IGGT.from_pretrained(<dir>)`` loads it);
- ``training_state.pt``: step, optimiser, scheduler, and per rank the RNG states (python, numpy,
  torch CPU, CUDA) and the data position, i.e. everything a resume needs to continue exactly.

``<output_dir>/checkpoints/latest`` names the newest complete checkpoint; directories are written
under a temporary name and renamed, so a run killed mid-save leaves the previous one intact.

A transfer checkpoint is the same files cut into ``<name>.partNNN`` pieces below a size limit,
with ``manifest.json`` giving each file's size and SHA-256; :func:`join_transfer_checkpoint`
rebuilds the checkpoint byte for byte (weights optionally stored in bfloat16, the optimiser state
optionally compacted by :mod:`iggt.train.compact_state`; :func:`read_training_state` expands it).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save

from iggt.errors import CheckpointError, first_line
from iggt.model.checkpoint import WEIGHTS_FILENAME, save_checkpoint
from iggt.train.compact_state import compact_optimizer_state, expand_optimizer_state, is_compact

STATE_FILENAME = "training_state.pt"
MANIFEST_FILENAME = "manifest.json"
LATEST_FILENAME = "latest"


def checkpoint_name(step: int) -> str:
    return f"step_{step:07d}"


def write_checkpoint(
    directory: Path, model_state: dict[str, torch.Tensor], model_config: dict, training_state: dict | None
) -> Path:
    """Atomically write model weights (+ training state) to ``directory``; returns it."""
    directory = Path(directory)
    temporary = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    save_checkpoint(model_state, model_config, temporary / WEIGHTS_FILENAME)
    if training_state is not None:
        torch.save(training_state, temporary / STATE_FILENAME)
    shutil.rmtree(directory, ignore_errors=True)
    temporary.rename(directory)
    return directory


def mark_latest(checkpoints_dir: Path, directory: Path, keep: int) -> None:
    """Point ``latest`` at ``directory`` and delete all but the ``keep`` newest step checkpoints."""
    temporary = checkpoints_dir / (LATEST_FILENAME + ".tmp")
    temporary.write_text(directory.name + "\n")
    temporary.replace(checkpoints_dir / LATEST_FILENAME)
    steps = sorted(p for p in checkpoints_dir.glob("step_*") if p.is_dir() and not p.name.endswith(".tmp"))
    for old in steps[: max(0, len(steps) - keep)]:
        if old != directory:
            shutil.rmtree(old)


def latest_checkpoint(checkpoints_dir: Path) -> Path | None:
    """The checkpoint ``latest`` names, or None when there is none yet."""
    marker = Path(checkpoints_dir) / LATEST_FILENAME
    if not marker.is_file():
        return None
    directory = marker.parent / marker.read_text().strip()
    if not (directory / WEIGHTS_FILENAME).is_file():
        raise CheckpointError(f"{marker} names {directory.name!r}, which has no {WEIGHTS_FILENAME}; delete {marker}")
    return directory


def read_training_state(directory: Path) -> dict:
    """The training state of a checkpoint directory (weights_only: plain tensors and containers)."""
    path = Path(directory) / STATE_FILENAME
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {str(directory)!r} has no {STATE_FILENAME} (weights only); use it as "
            "model.init_checkpoint instead of train.resume"
        )
    try:
        # Our own file; it holds numpy RNG arrays and the data sources' states, which weights_only refuses.
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # truncated zip, unpickling and runtime errors alike
        reason = first_line(error)
        raise CheckpointError(
            f"{STATE_FILENAME} of {Path(directory).name} cannot be read ({reason}); it is probably truncated "
            f"(an interrupted copy): copy it again, or delete {directory} to resume from an earlier checkpoint"
        ) from None
    if is_compact(state.get("optimizer", {})):  # from a compact transfer checkpoint
        state["optimizer"] = expand_optimizer_state(state["optimizer"])
    return state


def rng_state() -> dict:
    """This process's random states: python, numpy, torch CPU and (if any) the current CUDA device."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    """Inverse of :func:`rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def split_into_parts(
    directory: Path, transfer_dir: Path, part_bytes: int, bf16: bool, training_state: bool, compact: bool = False
) -> Path:
    """Write the checkpoint in ``directory`` as parts of at most ``part_bytes`` bytes + manifest.json.

    ``bf16`` re-encodes floating-point weights in bfloat16; ``training_state`` False leaves
    training_state.pt out (weights only); ``compact`` stores its optimiser state in the compact form
    of :mod:`iggt.train.compact_state` (everything else in it exact). The folder is replaced atomically.
    """
    if part_bytes < 1:
        raise CheckpointError(f"transfer part size must be >= 1 byte, got {part_bytes}")
    names = [WEIGHTS_FILENAME] + ([STATE_FILENAME] if training_state and (directory / STATE_FILENAME).is_file() else [])
    temporary = transfer_dir.with_name(transfer_dir.name + ".tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    files = []
    for name in names:
        if bf16 and name == WEIGHTS_FILENAME:
            data = _bf16_weights_bytes(directory / name)
        elif compact and name == STATE_FILENAME:
            data = _compact_state_bytes(directory)
        else:
            data = (directory / name).read_bytes()
        parts = []
        for index, start in enumerate(range(0, max(len(data), 1), part_bytes)):
            part_name = f"{name}.part{index:03d}"
            (temporary / part_name).write_bytes(data[start : start + part_bytes])
            parts.append(part_name)
        files.append({"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "parts": parts})
    manifest = {"source": directory.name, "bf16": bf16, "compact_state": compact, "files": files}
    (temporary / MANIFEST_FILENAME).write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(transfer_dir, ignore_errors=True)
    temporary.rename(transfer_dir)
    return transfer_dir


def _bf16_weights_bytes(path: Path) -> bytes:
    """A weights file re-encoded with floating tensors in bfloat16 (config metadata kept)."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (not a dict)
    converted = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in tensors.items()}
    return save(converted, metadata=metadata)


def _compact_state_bytes(directory: Path) -> bytes:
    """training_state.pt of ``directory`` with its optimiser state compacted, serialised."""
    state = read_training_state(directory)
    state["optimizer"] = compact_optimizer_state(state["optimizer"])
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def is_transfer_checkpoint(directory: Path) -> bool:
    return (Path(directory) / MANIFEST_FILENAME).is_file()


def join_transfer_checkpoint(transfer_dir: Path, directory: Path) -> Path:
    """Reassemble the parts in ``transfer_dir`` into a checkpoint directory; every file's size and
    SHA-256 are checked against the manifest."""
    transfer_dir = Path(transfer_dir)
    manifest = json.loads((transfer_dir / MANIFEST_FILENAME).read_text())
    temporary = Path(directory).with_name(Path(directory).name + ".tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    for entry in manifest["files"]:
        missing = [p for p in entry["parts"] if not (transfer_dir / p).is_file()]
        if missing:
            raise CheckpointError(f"transfer checkpoint {transfer_dir} lacks parts {missing[:3]}; copy every part")
        data = b"".join((transfer_dir / part).read_bytes() for part in entry["parts"])
        if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise CheckpointError(
                f"transfer checkpoint file {entry['name']!r} in {transfer_dir} is corrupt (size or SHA-256 "
                "differs from manifest.json); copy its parts again"
            )
        (temporary / entry["name"]).write_bytes(data)
    shutil.rmtree(directory, ignore_errors=True)
    temporary.rename(directory)
    return Path(directory)


def export_model(model_state: dict[str, torch.Tensor], model_config: dict, path: Path, bf16: bool) -> Path:
    """The shipping weights (optionally bfloat16) with the config embedded; IGGT.from_pretrained reads it."""
    if bf16:
        model_state = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in model_state.items()}
    return save_checkpoint(model_state, model_config, path)
