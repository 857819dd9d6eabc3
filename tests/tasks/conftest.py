"""Fixtures of the task tests: one engine-rendered scene saved as an export folder, shared by all."""

import pytest
from synth_result import SynthResult, render_synth_result

SEED, TRAJECTORY = 25, "walk"
OCCLUDED = (10, 0)
"""Instance 10 (a chair) hidden from view 0 by an added sphere; it is out of frame in views 1 and
2 (the walk turns away) and re-enters in view 3."""


@pytest.fixture(scope="session")
def synth_scene(tmp_path_factory) -> SynthResult:
    return render_synth_result(tmp_path_factory.mktemp("synth") / "result", SEED, TRAJECTORY, occlude=OCCLUDED)
