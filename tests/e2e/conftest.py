"""Fixtures of the command-line tests: a tiny weights file and a folder of two small photos."""

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory, tiny_model):
    return tiny_model.save_pretrained(tmp_path_factory.mktemp("weights") / "tiny.safetensors")


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(2):
        Image.fromarray(rng.integers(0, 256, (42, 56, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    return folder
