"""The one place tests find the shared reference folder: ``../shared`` beside the repository root.

Only relative to this checkout, never an absolute path of one machine. Where ``../shared/reference``
is present the tests that read it run (and fail on a mismatch or a missing file); only where it is
absent do they skip, saying so.
"""

from pathlib import Path

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPOSITORY_ROOT.parent / "shared"
REFERENCE = SHARED / "reference"
"""Official fixtures: the state-dict listing, parity rule, images and official outputs."""

requires_reference = pytest.mark.skipif(
    not REFERENCE.is_dir(), reason=f"../shared/reference (official fixtures) is absent beside {REPOSITORY_ROOT}"
)
