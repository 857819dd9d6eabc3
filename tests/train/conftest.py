import pytest
from train_helpers import make_batch


@pytest.fixture
def batch() -> dict:
    """One scene of 2 views at 28 x 28 (tests/train/train_helpers.py)."""
    return make_batch()
