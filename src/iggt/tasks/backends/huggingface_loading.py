"""Loading a Hugging Face ``transformers`` model with its processor from a folder or a hub id.

Nothing is hard-coded: the source is what the user passes. A folder is read with
``local_files_only``; anything else is treated as a hub id, fetched only when the machine is
online and ``HF_HUB_OFFLINE`` is not set (otherwise only the local cache is looked at).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from iggt.errors import InputError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
"""What is taken for a hub id when no such folder exists (also by the open_clip backend)."""


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` restricts hub ids to the local cache."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def load_model_and_processors(backend: str, source: str, model_class: type, device: str):
    """(model in eval mode on ``device``, image processor, tokenizer) for ``source``; one-line InputError on failure."""
    try:
        from transformers import AutoImageProcessor, AutoTokenizer
    except ImportError as exc:
        raise InputError(f"the {backend} backend needs `transformers`; install iggt[vl]") from exc
    local = Path(source).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            raise InputError(f"{local} has no config.json; pass a save_pretrained folder for --backend {backend}")
        location, local_only = str(local), True
    elif HUB_ID.match(source) and not source.startswith("."):
        location, local_only = source, hub_offline()
    else:
        raise InputError(f"backend folder {source} does not exist; pass --backend-path to a save_pretrained folder")
    try:
        model = model_class.from_pretrained(location, local_files_only=local_only)
        image_processor = AutoImageProcessor.from_pretrained(location, local_files_only=local_only)
        tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=local_only)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        where = "folder" if local.exists() else ("hub id (offline: local cache only)" if local_only else "hub id")
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot load the {backend} backend from {where} {source!r}: {reason}") from exc
    return model.to(device).eval(), image_processor, tokenizer
