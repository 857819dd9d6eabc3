"""Where the instance step's time goes: wall seconds per part, recorded only inside a profile.

``Reconstruction.timings`` holds one "instances" entry (and the CLI prints every entry); a
benchmark opens :func:`instance_profile` around a run to split that entry into its parts (points,
clustering, assignment, majority filter, lifting). Each part ends with host arrays (a GPU part
ends in its copy back), so wall time needs no extra device syncs; outside a profile a part costs
one context-variable read.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class _Profile:
    seconds: dict[str, float] = field(default_factory=dict)
    inner: list[float] = field(default_factory=list)
    """Per open part, the seconds of the parts that ran inside it (taken out of its own)."""


_active: ContextVar[_Profile | None] = ContextVar("iggt_instance_profile", default=None)


@contextmanager
def instance_profile() -> Iterator[dict[str, float]]:
    """Record the parts run inside the block on this thread: yields {part: seconds}, filled as
    parts end. A part run several times (per refine round, per window) adds up; a part inside
    another is left out of the outer one's seconds, so the parts add up to the step."""
    profile = _Profile()
    token = _active.set(profile)
    try:
        yield profile.seconds
    finally:
        _active.reset(token)


@contextmanager
def timed_part(name: str) -> Iterator[None]:
    """Add the block's wall seconds to part ``name`` of the open profile, if any."""
    profile = _active.get()
    if profile is None:
        yield
        return
    profile.seconds.setdefault(name, 0.0)  # parts listed in the order they first start
    profile.inner.append(0.0)
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        profile.seconds[name] += elapsed - profile.inner.pop()
        if profile.inner:
            profile.inner[-1] += elapsed
