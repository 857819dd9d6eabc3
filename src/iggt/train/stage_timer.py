"""Wall time of each part of a training step, for benchmarks/train_throughput.py.

CUDA work is asynchronous, so each mark synchronises the device first: the times are then the
parts' own, at the price of the overlap a real run has. The trainer takes ``timer=None`` (the
default) and then never synchronises for it.
"""

from __future__ import annotations

import time
from collections import defaultdict

import torch

STAGES = ("data", "forward", "loss", "backward", "optimiser")


class StageTimer:
    """Accumulates seconds per stage between :meth:`mark` calls."""

    def __init__(self, device: torch.device) -> None:
        self.device = torch.device(device)
        self.seconds: dict[str, float] = defaultdict(float)
        self._last = time.perf_counter()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def start(self) -> None:
        """Begin a stage here (after any untimed work)."""
        self._sync()
        self._last = time.perf_counter()

    def mark(self, stage: str) -> None:
        """The time since the last mark (or start) belongs to ``stage``."""
        self._sync()
        now = time.perf_counter()
        self.seconds[stage] += now - self._last
        self._last = now

    def reset(self) -> None:
        self.seconds.clear()
        self.start()
