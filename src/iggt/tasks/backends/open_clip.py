"""OpenCLIP (``open_clip_torch``) as an image-text backend: pooled embeddings only, used through crops.

Untested in this repository: open_clip needs torchvision, which does not import beside the torch
the project pins. The source is a folder holding ``open_clip_config.json`` and the weights
(loaded as ``local-dir:<folder>``) or, when online, a hub id (``hf-hub:<id>``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from iggt.errors import InputError
from iggt.tasks.backends.base import as_uint8, unit_rows

BATCH_SIZE = 16


def _import_open_clip():
    try:
        import open_clip
    except Exception as exc:  # ImportError, or torchvision failing inside open_clip's import
        raise InputError(
            f"the open_clip backend needs open_clip_torch and a working torchvision ({type(exc).__name__}: {exc}); "
            "use --backend clip or siglip"
        ) from exc
    return open_clip


class OpenClipBackend:
    name = "open_clip"
    has_dense_features = False

    def __init__(self, source: str, device: str = "cpu") -> None:
        open_clip = _import_open_clip()
        local = Path(source).expanduser()
        model_name = f"local-dir:{local}" if local.is_dir() else f"hf-hub:{source}"
        try:
            self.model, _, self.preprocess = open_clip.create_model_and_transforms(model_name, device=device)
            self.tokenizer = open_clip.get_tokenizer(model_name)
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            raise InputError(f"cannot load the open_clip backend from {source!r}: {exc}") from exc
        self.model.eval()
        self.device = device

    @torch.no_grad()
    def encode_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        parts = []
        for begin in range(0, len(images), BATCH_SIZE):
            batch = [self.preprocess(Image.fromarray(as_uint8(image))) for image in images[begin : begin + BATCH_SIZE]]
            parts.append(self.model.encode_image(torch.stack(batch).to(self.device)))
        return unit_rows(torch.cat(parts).float().cpu().numpy())

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return unit_rows(self.model.encode_text(self.tokenizer(list(texts)).to(self.device)).float().cpu().numpy())

    def dense_features(self, image: np.ndarray) -> np.ndarray:
        raise InputError("the open_clip backend has no dense features; it is used through crops")
