"""Bootstrap intervals of a mean over a benchmark's scenes (the unit ``iggt eval`` averages over).

Scenes are resampled with replacement ``BOOTSTRAP_SAMPLES`` times with a fixed seed, so the same
values give the same interval on every machine; the interval is the 2.5-97.5 percentile range of
the resampled means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iggt.errors import InputError

BOOTSTRAP_SAMPLES = 10_000


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float

    @property
    def resolved(self) -> bool:
        """The interval leaves out 0 (for a difference: the benchmark tells the runs apart)."""
        return self.low > 0 or self.high < 0


def bootstrap_mean(values: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> Interval:
    """(S,) per-scene values -> their mean and its bootstrap 95 % percentile interval."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0 or not np.isfinite(values).all():
        raise InputError(f"need a non-empty 1-D array of finite per-scene values, got shape {values.shape}")
    picks = np.random.default_rng(seed).integers(0, len(values), size=(samples, len(values)))
    means = values[picks].mean(1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Interval(float(values.mean()), float(low), float(high))
