"""The torch path of the majority filter (a GPU's, run here on the CPU) gives the NumPy path's labels."""

import numpy as np
import pytest
import torch

import iggt.instances.lifting as lifting
from iggt.instances import majority_filter

CPU = torch.device("cpu")


def speckled_labels(rng, shape, dtype, count):
    """Blocks of ``count`` labels with speckle: ties, borders and runs of one label all occur."""
    views, height, width = shape
    blocks = rng.integers(0, count, size=(views, height // 3 + 1, width // 3 + 1))
    labels = np.repeat(np.repeat(blocks, 3, 1), 3, 2)[:, :height, :width]
    speckle = rng.random(shape) < 0.3
    labels[speckle] = rng.integers(0, count, size=speckle.sum())
    return labels.astype(dtype)


@pytest.mark.parametrize("radius", [1, 2])
@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.int64])
def test_torch_majority_filter_is_the_numpy_filter_bit_for_bit(rng, monkeypatch, dtype, radius):
    monkeypatch.setattr(lifting, "CHUNK_PIXELS", 2 * 13 * 17)  # 2 views a chunk: 4 chunks, the last short
    for count in (3, 40):  # few labels: many ties; many labels: windows of all-different labels
        labels = speckled_labels(rng, (7, 13, 17), dtype, count)
        labels[3, :5] = 20_000  # a large ID
        expected = majority_filter(labels, radius)
        got = majority_filter(labels, radius, device=CPU)
        assert got.dtype == labels.dtype and np.array_equal(got, expected)
        assert not np.array_equal(got, labels)  # the speckle was filtered: the comparison means something


def test_torch_majority_filter_reads_memory_maps_and_radius_0_changes_nothing(rng, tmp_path, monkeypatch):
    monkeypatch.setattr(lifting, "CHUNK_PIXELS", 3 * 11 * 9)
    labels = speckled_labels(rng, (8, 11, 9), np.int32, 5)
    np.save(tmp_path / "labels.npy", labels)
    mapped = np.load(tmp_path / "labels.npy", mmap_mode="r")  # read-only, as a stored capture's
    assert np.array_equal(majority_filter(mapped, 1, device=CPU), majority_filter(labels, 1))
    assert np.array_equal(mapped, labels)  # the map is read, never written
    assert majority_filter(labels, 0, device=CPU) is labels
