"""Where a model's weights come from: a shipped name, a local file or folder, or a Hugging Face hub id.

:func:`resolve_model_source` is the one entry point; :meth:`IGGT.from_pretrained` and
:func:`load_model` both go through it. Shipped models live in ``iggt/assets/models/`` inside the
package. Nothing here imports torch, so command-line modules can read :data:`DEFAULT_MODEL`.
"""

from __future__ import annotations

from pathlib import Path

from iggt.errors import CheckpointError

DEFAULT_MODEL = "iggt-small"
"""The model every entry point uses unless told otherwise; the only place its name is spelled."""
SHIPPED_MODELS_DIR = Path(__file__).resolve().parent.parent / "assets" / "models"
SHIPPED_MODELS = {
    DEFAULT_MODEL: f"{DEFAULT_MODEL}.safetensors",
}
WEIGHTS_FILENAME = "model.safetensors"
"""The weights file inside a model folder (what save_pretrained writes into a folder)."""
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
WEIGHTS_SUFFIXES = (".safetensors", *TORCH_SUFFIXES)
HUB_TIMEOUT_S = 10.0
"""Seconds to wait for the hub before saying it cannot be reached (no retries)."""


def known_model_names() -> list[str]:
    """Names accepted by :func:`resolve_model_source` besides paths and hub ids."""
    return sorted(SHIPPED_MODELS)


def is_hub_id(text: str) -> bool:
    """True for "owner/name" that cannot be a path to a weights file (no leading . or ~, no
    backslash, no weights suffix). An existing local folder of that name wins over the hub."""
    parts = text.split("/")
    path_like = text.startswith((".", "~")) or "\\" in text or text.endswith(WEIGHTS_SUFFIXES)
    return len(parts) == 2 and all(parts) and not path_like


def resolve_model_source(source: str | Path) -> Path:
    """The local weights file for ``source``, tried in this order: a shipped name, an existing
    folder (its model.safetensors), an existing file, a hub id (the local cache, else a download).

    Raises CheckpointError naming ``source`` and the fix when none of them fits.
    """
    text = str(source)
    if text in SHIPPED_MODELS:
        return _shipped_weights(text)
    path = Path(text).expanduser()
    if path.is_dir():
        return _folder_weights(path, text)
    if path.is_file():
        return path
    if is_hub_id(text):
        return _download_from_hub(text)
    if text.endswith(WEIGHTS_SUFFIXES):
        raise CheckpointError(f"model file {text} does not exist; check the path or pass a known name")
    raise CheckpointError(
        f"unknown model {text!r}: not a known name ({', '.join(known_model_names())}), an existing "
        "weights file or folder, or a hub id owner/name"
    )


def load_model(source: str | Path):
    """An :class:`IGGT` in eval mode on the CPU for anything :func:`resolve_model_source` accepts."""
    from iggt.model.iggt import IGGT  # the network imports this module to resolve its sources

    return IGGT.from_pretrained(source).eval()


def _shipped_weights(name: str) -> Path:
    path = SHIPPED_MODELS_DIR / SHIPPED_MODELS[name]
    if not path.is_file():
        raise CheckpointError(
            f"shipped model {name!r} is missing (expected {path}); reinstall iggt or pass "
            "--model PATH to a weights file"
        )
    return path


def _folder_weights(folder: Path, text: str) -> Path:
    if not (folder / WEIGHTS_FILENAME).is_file():
        held = sorted(p.name for p in folder.iterdir())
        raise CheckpointError(
            f"folder {text} has no {WEIGHTS_FILENAME} (it holds {held[:6] or 'nothing'}); "
            "pass the folder that has it, or the weights file itself"
        )
    return folder / WEIGHTS_FILENAME


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
    for suffix in WEIGHTS_SUFFIXES:
        candidates = sorted(f for f in files if f.endswith(suffix))
        if candidates:
            return candidates[0]
    raise CheckpointError(f"no weights file (.safetensors/.pt/.pth) in hub files {files[:8]}; pass a local file")
