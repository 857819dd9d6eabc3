"""Small engine scenes for the curation tests, rendered once per test session on the CPU."""

import pytest

from iggt.synth.config import RenderConfig, SceneConfig
from iggt.synth.generate import render_scenes

ORBITS = SceneConfig(trajectory_weights={"orbit": 1.0, "look_at": 1.0})


@pytest.fixture(scope="session")
def engine_scenes():
    """Three 8-view 60 x 80 rooms with exact depth, poses and instance IDs (about 3 s on 2 cores)."""
    return list(render_scenes([5, 6, 7], 8, (60, 80), ORBITS, RenderConfig(shadows=False)))
