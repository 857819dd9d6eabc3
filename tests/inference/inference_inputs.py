"""Inputs shared by the inference tests: random in-memory images and a fast instance setting."""

import numpy as np

from iggt.instances import InstanceConfig

FAST_INSTANCES = InstanceConfig(sample_size=512, refine_rounds=0)
"""Few samples and no refinement: instance extraction in milliseconds on tiny images."""


def random_images(sizes: list[tuple[int, int]], seed: int = 0) -> list[np.ndarray]:
    """One (H, W, 3) float32 image in [0, 1) per (H, W) in ``sizes``."""
    rng = np.random.default_rng(seed)
    return [rng.random((h, w, 3), dtype=np.float32) for h, w in sizes]
