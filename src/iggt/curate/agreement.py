"""How well curated instance IDs agree with known ones: the adjusted Rand index over pixels."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score


def instance_agreement(curated: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Agreement of two (S, H, W) ID maps (0 = none) taken as one clustering of all their pixels.

    Returns:
        ari: adjusted Rand index over the pixels with an ID in both (1 = the same partition up to
            renaming, across every frame at once; ~0 = chance);
        labelled_fraction: fraction of the truth's labelled pixels that the curated map labels too.
    """
    both = (curated > 0) & (truth > 0)
    if not both.any():
        return {"ari": float("nan"), "labelled_fraction": 0.0}
    return {
        "ari": float(adjusted_rand_score(truth[both], curated[both])),
        "labelled_fraction": float(both.sum() / max((truth > 0).sum(), 1)),
    }
