"""Fixtures of the task tests: one engine-rendered scene saved as an export folder, shared by all."""

import pytest
from synth_result import OCCLUDED, SEED, TRAJECTORY, SynthResult, render_synth_result


@pytest.fixture(scope="session")
def synth_scene(tmp_path_factory) -> SynthResult:
    return render_synth_result(tmp_path_factory.mktemp("synth") / "result", SEED, TRAJECTORY, occlude=OCCLUDED)
