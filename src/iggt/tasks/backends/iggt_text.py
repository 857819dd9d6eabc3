"""iggt-text as an image-text backend: the small model shipped with iggt, crops only.

It knows only the scene engine's world (docs/model_card_iggt-text.md): the engine's 23 classes,
11 colour words, sizes and shapes. Its source is a safetensors file written by
``python -m iggt.tasks.train_text_model``; by default the shipped ``assets/models/iggt-text.safetensors``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from iggt.errors import InputError
from iggt.tasks.backends.base import as_uint8
from iggt.tasks.text_model.captions import tokenize
from iggt.tasks.text_model.network import crops_to_tensor
from iggt.tasks.text_model.weights import load_text_model

SHIPPED_WEIGHTS = Path(__file__).resolve().parents[2] / "assets" / "models" / "iggt-text.safetensors"
BATCH_SIZE = 256


class IggtTextBackend:
    name = "iggt-text"
    has_dense_features = False

    def __init__(self, source: str | None = None, device: str = "cpu") -> None:
        self.source = Path(source).expanduser() if source else SHIPPED_WEIGHTS
        self.model, self.vocabulary = load_text_model(self.source)
        self.model.to(device)
        self.device = device

    @torch.no_grad()
    def encode_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """N crops (any size) -> (N, D) unit-norm embeddings."""
        crops = [as_uint8(image) for image in images]
        if not crops:
            raise InputError("encode_images needs at least one image")
        parts = [
            self.model.image(crops_to_tensor(crops[begin : begin + BATCH_SIZE]).to(self.device))
            for begin in range(0, len(crops), BATCH_SIZE)
        ]
        return torch.cat(parts).cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """T texts -> (T, D) unit-norm embeddings; words outside the vocabulary count as UNK."""
        tokens = torch.from_numpy(tokenize(list(texts), self.vocabulary)).to(self.device)
        return self.model.text(tokens).cpu().numpy().astype(np.float32)

    def dense_features(self, image: np.ndarray) -> np.ndarray:
        raise InputError("the iggt-text backend has no dense features; it is used through crops")
