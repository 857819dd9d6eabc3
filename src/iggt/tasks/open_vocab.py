"""Open-vocabulary labels for the instances of a saved reconstruction, and text queries over them.

Each instance gets one embedding in the backend's joint image-text space:

- ``dense`` (the paper's method, for backends with patch features): average mask pooling. Every
  view's dense features ``(h, w, D)`` span the whole image; an instance's mask is area-resampled
  to the feature grid (the fraction of each cell it covers) and the features are averaged with
  those weights over its masks in all views, i.e. every mask pixel counts once.
- ``crops`` (for crop-only backends): the instance's best views (score = mask area x mean depth
  confidence, halved when the mask touches the image border, i.e. the object is cut), cropped to
  the mask's box grown by ``crop_context`` on each side, embedded and averaged with the scores
  as weights (like the pixel count weighs the views in dense pooling).

Labelling compares the unit-norm instance embeddings with the texts ``prompt.format(word)`` by
cosine similarity; the best word wins unless its similarity is below ``other_threshold``, then the
instance is "other". The similarity scale depends on the backend (CLIP cosines of matching pairs
are typically 0.2-0.35, SigLIP's lower), so the threshold is the user's to set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from iggt.errors import ConfigError, InputError
from iggt.tasks.backends.base import ImageTextBackend, unit_rows
from iggt.tasks.result import SavedResult

OTHER = "other"
METHODS = ("auto", "dense", "crops")


@dataclass(frozen=True)
class OpenVocabConfig:
    """How instances are embedded and labelled (module docstring)."""

    method: str = "auto"
    """"dense", "crops", or "auto": dense where the backend has dense features, else crops."""
    prompt: str = "a photo of a {}."
    """Template that turns a vocabulary word into the text embedded."""
    other_threshold: float = 0.2
    """Best cosine similarity below this labels an instance "other" (backend-dependent scale)."""
    crops_per_instance: int = 3
    """Best views cropped per instance (crops method)."""
    crop_context: float = 0.25
    """The crop box grows by this fraction of the mask box's size on each side."""
    top_k: int = 5
    """Ranked alternatives kept per instance."""

    def __post_init__(self) -> None:
        checks = {
            "method": self.method in METHODS,
            "prompt": "{}" in self.prompt,
            "crops_per_instance": self.crops_per_instance >= 1,
            "crop_context": self.crop_context >= 0,
            "top_k": self.top_k >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"OpenVocabConfig.{name}={getattr(self, name)!r} is out of range; see its docstring")


@dataclass
class InstanceLabel:
    """The label of one instance: ``label`` is a vocabulary word or "other"; ``class_id`` its
    index in the vocabulary + 1 (len(vocabulary) + 1 for "other"); ``ranked`` the top-k words."""

    instance_id: int
    label: str
    class_id: int
    score: float
    ranked: list[tuple[str, float]]


def resolve_method(backend: ImageTextBackend, method: str) -> str:
    if method == "auto":
        return "dense" if backend.has_dense_features else "crops"
    if method == "dense" and not backend.has_dense_features:
        raise InputError(f"the {backend.name} backend has no dense features; use --method crops")
    return method


def instance_embeddings(result: SavedResult, backend: ImageTextBackend, config: OpenVocabConfig) -> np.ndarray:
    """(K, D) float32 unit-norm embedding of every instance, rows in ``result.instances.ids`` order."""
    if resolve_method(backend, config.method) == "dense":
        return _mask_pooled(result, backend)
    return _crop_averaged(result, backend, config)


def _mask_pooled(result: SavedResult, backend: ImageTextBackend) -> np.ndarray:
    labels, ids = result.instances.labels, result.instances.ids
    sums = None
    for view in range(result.num_views):
        present = np.intersect1d(np.unique(labels[view]), ids)
        if len(present) == 0:
            continue
        features = backend.dense_features(result.predictions.images[view])  # (h, w, D)
        if sums is None:
            sums = np.zeros((len(ids), features.shape[-1]))
        for instance_id in present:
            weights = cell_coverage(labels[view] == instance_id, features.shape[:2])
            sums[np.searchsorted(ids, instance_id)] += np.einsum("hw,hwd->d", weights, features)
    if sums is None:
        raise InputError(f"{result.folder} has no instance pixels to label")
    return unit_rows(sums)


def cell_coverage(mask: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(H, W) bool -> (h, w) float: the mask's pixel area in each cell of an h x w grid over the image.

    Exact in area, also where H, W are not multiples of h, w (cells then cut pixels in fractions).
    """
    rows = _interval_overlap(mask.shape[0], grid[0])  # (h, H)
    columns = _interval_overlap(mask.shape[1], grid[1])  # (w, W)
    return rows @ mask.astype(np.float64) @ columns.T


def _interval_overlap(pixels: int, cells: int) -> np.ndarray:
    """(cells, pixels): length of pixel [p, p + 1) inside cell [c n / cells, (c + 1) n / cells), in pixels."""
    edges = np.arange(cells + 1) * pixels / cells
    start = np.maximum(edges[:-1, None], np.arange(pixels)[None])
    stop = np.minimum(edges[1:, None], np.arange(pixels)[None] + 1)
    return np.clip(stop - start, 0, None)


def view_scores(result: SavedResult, instance_id: int) -> np.ndarray:
    """(S,) how well each view shows the instance: mask area x mean depth confidence, halved when
    the mask touches the image border (the object is cut); 0 where it has no pixel."""
    masks = result.instances.labels == instance_id
    area = masks.sum((1, 2))
    confidence = np.where(masks, result.predictions.depth_conf, 0).sum((1, 2)) / np.maximum(area, 1)
    border = masks[:, 0].any(1) | masks[:, -1].any(1) | masks[:, :, 0].any(1) | masks[:, :, -1].any(1)
    return area * np.nan_to_num(confidence) * np.where(border, 0.5, 1.0)


def best_views(result: SavedResult, instance_id: int, count: int) -> list[int]:
    """The ``count`` views with the highest :func:`view_scores` among those showing the instance."""
    score = view_scores(result, instance_id)
    return [int(view) for view in np.argsort(-score, kind="stable") if score[view] > 0][:count]


def instance_crop(image: np.ndarray, mask: np.ndarray, context: float) -> np.ndarray:
    """The (h, w, 3) part of ``image`` around ``mask``'s box grown by ``context`` of its size per side,
    and widened towards a square where the image allows (processors centre-crop to squares)."""
    rows, columns = np.nonzero(mask)
    top, bottom, left, right = rows.min(), rows.max() + 1, columns.min(), columns.max() + 1
    grow_y, grow_x = int(round(context * (bottom - top))), int(round(context * (right - left)))
    side = max(bottom - top + 2 * grow_y, right - left + 2 * grow_x)
    grow_y, grow_x = (side - (bottom - top)) // 2, (side - (right - left)) // 2
    height, width = mask.shape
    return image[
        max(top - grow_y, 0) : min(bottom + grow_y, height), max(left - grow_x, 0) : min(right + grow_x, width)
    ]


def _crop_averaged(result: SavedResult, backend: ImageTextBackend, config: OpenVocabConfig) -> np.ndarray:
    """Crops of each instance's best views, embedded and averaged with the views' scores as weights."""
    crops, owners, weights = [], [], []
    for row, instance_id in enumerate(result.instances.ids.tolist()):
        scores = view_scores(result, instance_id)
        for view in best_views(result, instance_id, config.crops_per_instance):
            mask = result.instances.labels[view] == instance_id
            crops.append(instance_crop(result.predictions.images[view], mask, config.crop_context))
            owners.append(row)
            weights.append(scores[view])
    if not crops:
        raise InputError(f"{result.folder} has no instance pixels to label")
    embeddings = backend.encode_images(crops)
    sums = np.zeros((result.instances.num_instances, embeddings.shape[1]))
    np.add.at(sums, np.asarray(owners), np.asarray(weights)[:, None] * embeddings)
    return unit_rows(sums)


def parse_vocabulary(text: str | Sequence[str]) -> list[str]:
    """ "chair, table,sofa" or a list -> ["chair", "table", "sofa"]; InputError when empty or repeated."""
    words = [w.strip() for w in (text.split(",") if isinstance(text, str) else text)]
    words = [w for w in words if w]
    if not words:
        raise InputError("the vocabulary is empty; pass words separated by commas, e.g. --vocab 'chair,table,sofa'")
    if len(set(words)) != len(words) or OTHER in words:
        raise InputError(f"vocabulary words must be distinct and not {OTHER!r}; got {words}")
    return words


def label_instances(
    embeddings: np.ndarray,
    instance_ids: np.ndarray,
    vocabulary: Sequence[str],
    text_embeddings: np.ndarray,
    config: OpenVocabConfig,
) -> list[InstanceLabel]:
    """Label (K, D) instance embeddings against (C, D) embeddings of the C vocabulary words."""
    similarity = embeddings @ text_embeddings.T  # (K, C) cosines: both sides unit norm
    labels = []
    for row, instance_id in enumerate(instance_ids.tolist()):
        order = np.argsort(-similarity[row], kind="stable")
        best = int(order[0])
        score = float(similarity[row, best])
        keep = score >= config.other_threshold
        labels.append(
            InstanceLabel(
                instance_id=instance_id,
                label=vocabulary[best] if keep else OTHER,
                class_id=best + 1 if keep else len(vocabulary) + 1,
                score=score,
                ranked=[(vocabulary[c], float(similarity[row, c])) for c in order[: config.top_k]],
            )
        )
    return labels


def rank_instances(
    embeddings: np.ndarray, instance_ids: np.ndarray, query_embedding: np.ndarray
) -> list[tuple[int, float]]:
    """(instance ID, cosine) for every instance, best match first (ties keep ID order)."""
    similarity = embeddings @ query_embedding
    order = np.argsort(-similarity, kind="stable")
    return [(int(instance_ids[i]), float(similarity[i])) for i in order]


def segment(
    result: SavedResult, backend: ImageTextBackend, vocabulary: Sequence[str], config: OpenVocabConfig | None = None
) -> list[InstanceLabel]:
    """Embed every instance and label it against ``vocabulary``."""
    config = config or OpenVocabConfig()
    embeddings = instance_embeddings(result, backend, config)
    texts = backend.encode_texts([config.prompt.format(word) for word in vocabulary])
    return label_instances(embeddings, result.instances.ids, vocabulary, texts, config)


def query(
    result: SavedResult, backend: ImageTextBackend, text: str, config: OpenVocabConfig | None = None
) -> list[tuple[int, float]]:
    """Instances ranked by similarity to a free-form text (embedded as given, without the prompt)."""
    if not text.strip():
        raise InputError("the query is empty; pass a text such as 'the red chair'")
    embeddings = instance_embeddings(result, backend, config or OpenVocabConfig())
    return rank_instances(embeddings, result.instances.ids, backend.encode_texts([text])[0])
