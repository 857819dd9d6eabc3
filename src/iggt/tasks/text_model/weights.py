"""Saving and loading iggt-text: weights, tokenizer vocabulary and config in one safetensors file.

The metadata holds ``config`` (TextModelConfig as JSON), ``vocabulary`` (the word list as JSON)
and ``training`` (seed, steps). Weights are stored as float16 (half the size; the embeddings are
unit-normalised afterwards, so the rounding barely moves a cosine) and loaded as float32.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from iggt.errors import CheckpointError
from iggt.tasks.text_model.network import TextModel, TextModelConfig


def save_text_model(model: TextModel, vocabulary: list[str], path: Path, training: dict) -> None:
    """Write ``model`` and its ``vocabulary`` to ``path`` (through a temporary file, then renamed)."""
    tensors = {name: value.detach().to(torch.float16).contiguous() for name, value in model.state_dict().items()
               if value.is_floating_point()}  # fmt: skip
    tensors.update({name: value for name, value in model.state_dict().items() if not value.is_floating_point()})
    metadata = {
        "format": "iggt-text",
        "config": json.dumps(model.config.to_dict()),
        "vocabulary": json.dumps(vocabulary),
        "training": json.dumps(training),
    }
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    save_file(tensors, str(temporary), metadata=metadata)
    temporary.replace(path)


def load_text_model(path: Path) -> tuple[TextModel, list[str]]:
    """(model in eval mode, vocabulary) from a file written by :func:`save_text_model`; strict."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"iggt-text weights {path} do not exist; pass a file written by iggt.tasks.train_text_model"
        )
    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata() or {}
            tensors = {name: file.get_tensor(name) for name in file.keys()}  # noqa: SIM118 (a safe_open handle is not iterable)
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"cannot read iggt-text weights {path}: {exc}") from exc
    if metadata.get("format") != "iggt-text":
        raise CheckpointError(f"{path} is not an iggt-text file (metadata format={metadata.get('format')!r})")
    config = json.loads(metadata["config"])
    config["widths"] = tuple(config["widths"])
    model = TextModel(TextModelConfig(**config))
    state = {name: value.float() if value.is_floating_point() else value for name, value in tensors.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match the iggt-text network: missing {missing}, unexpected {unexpected}"
        )
    return model.eval(), json.loads(metadata["vocabulary"])
