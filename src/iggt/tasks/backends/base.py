"""The image-text backend protocol every open-vocabulary task talks to, and the registry of backends.

A backend embeds images and texts into one joint space (unit L2 norm, so a dot product is a
cosine similarity). Backends whose model gives per-patch features also implement
``dense_features``; the others (``has_dense_features`` False) are used through crops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from iggt.errors import InputError


@runtime_checkable
class ImageTextBackend(Protocol):
    """What the tasks need of a vision-language model.

    Images are (H, W, 3) arrays: uint8, or floats in [0, 1]; any size (the backend resizes).
    """

    name: str
    has_dense_features: bool

    def encode_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """N images -> (N, D) float32 unit-norm embeddings."""

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """T texts -> (T, D) float32 unit-norm embeddings."""

    def dense_features(self, image: np.ndarray) -> np.ndarray:
        """One image -> (h, w, D) float32 unit-norm patch features in the joint space (only where
        ``has_dense_features``)."""


BackendFactory = Callable[..., ImageTextBackend]
"""``factory(source, device="cpu")``: source is a local folder or file or, when online, a hub id;
None for the backend's shipped weights (only backends in ``SHIPPED_BACKENDS`` have them)."""

DEFAULT_BACKEND = "iggt-text"
"""The backend used when none is named: the small model shipped with iggt."""
SHIPPED_BACKENDS = ("iggt-text",)

_REGISTRY: dict[str, tuple[str, str]] = {
    "iggt-text": ("iggt.tasks.backends.iggt_text", "IggtTextBackend"),
    "clip": ("iggt.tasks.backends.huggingface_clip", "ClipBackend"),
    "siglip": ("iggt.tasks.backends.huggingface_siglip", "SiglipBackend"),
    "open_clip": ("iggt.tasks.backends.open_clip", "OpenClipBackend"),
}


def backend_names() -> list[str]:
    return sorted(_REGISTRY)


def load_backend(name: str = DEFAULT_BACKEND, source: str | None = None, device: str = "cpu") -> ImageTextBackend:
    """The backend ``name`` loaded from ``source`` (a folder or file, or a hub id when online; None:
    the shipped weights, for the backends that have them)."""
    from importlib import import_module

    if name not in _REGISTRY:
        raise InputError(f"unknown backend {name!r}; choose from {backend_names()}")
    if source is None and name not in SHIPPED_BACKENDS:
        raise InputError(f"the {name} backend ships no weights; pass its model with --backend-path")
    module, cls = _REGISTRY[name]
    return getattr(import_module(module), cls)(source, device=device)


def as_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 or floats in [0, 1] -> (H, W, 3) uint8; InputError for anything else."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise InputError(f"images must be (H, W, 3) RGB, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image
    if not np.issubdtype(image.dtype, np.floating):
        raise InputError(f"images must be uint8 or floats in [0, 1], got {image.dtype}")
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


def unit_rows(values: np.ndarray) -> np.ndarray:
    """(..., D) -> the same scaled to unit L2 norm along the last axis, as float32."""
    values = np.asarray(values, np.float64)
    return (values / np.maximum(np.linalg.norm(values, axis=-1, keepdims=True), 1e-12)).astype(np.float32)
