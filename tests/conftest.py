"""Fixtures shared by every test folder."""

import pytest
import torch

from iggt.model.iggt import IGGT


@pytest.fixture(scope="module")
def tiny_model() -> IGGT:
    """The ``tiny`` preset with seed-0 random weights, in eval mode (fast on a CPU)."""
    torch.manual_seed(0)
    return IGGT.from_preset("tiny").eval()
