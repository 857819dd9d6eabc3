"""Fixtures of the export tests."""

import pytest
from export_scene import make_scene

from iggt.structures import Instances, Predictions


@pytest.fixture
def scene() -> tuple[Predictions, Instances]:
    return make_scene()
