"""Turning a model name into a network: a shipped model, a local weights file, or a hub id.

Shipped models live in ``iggt/assets/models/`` inside the package. Anything else is handed to
:meth:`IGGT.from_pretrained`, which reads local files and Hugging Face hub ids ("owner/name").
"""

from __future__ import annotations

from pathlib import Path

from iggt.errors import CheckpointError

SHIPPED_MODELS_DIR = Path(__file__).resolve().parent.parent / "assets" / "models"
SHIPPED_MODELS = {
    "iggt-small": "iggt-small.safetensors",
}
DEFAULT_MODEL = "iggt-small"
WEIGHTS_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")


def known_model_names() -> list[str]:
    """Names accepted by :func:`load_model` besides paths and hub ids."""
    return sorted(SHIPPED_MODELS)


def resolve_model_source(name_or_path: str | Path) -> str:
    """The path or hub id :meth:`IGGT.from_pretrained` should read for ``name_or_path``."""
    text = str(name_or_path)
    if text in SHIPPED_MODELS:
        path = SHIPPED_MODELS_DIR / SHIPPED_MODELS[text]
        if not path.is_file():
            raise CheckpointError(
                f"shipped model {text!r} is missing (expected {path}); reinstall iggt or pass "
                "--model PATH to a weights file"
            )
        return str(path)
    if Path(text).expanduser().exists() or _looks_like_hub_id(text):
        return text
    if text.endswith(WEIGHTS_SUFFIXES):
        raise CheckpointError(f"model file {text} does not exist; check the path or pass a known name")
    raise CheckpointError(
        f"unknown model {text!r}: not a known name ({', '.join(known_model_names())}), an existing "
        "weights file or folder, or a hub id owner/name"
    )


def load_model(name_or_path: str | Path):
    """An :class:`IGGT` in eval mode on the CPU for a known name, a local path, or a hub id."""
    from iggt.model.iggt import IGGT

    model = IGGT.from_pretrained(resolve_model_source(name_or_path))
    return model.eval()


def _looks_like_hub_id(text: str) -> bool:
    """True for "owner/name" that cannot be a relative path to a weights file."""
    parts = text.split("/")
    path_like = text.startswith((".", "~")) or text.endswith(WEIGHTS_SUFFIXES)
    return len(parts) == 2 and all(parts) and not path_like
