"""The torch paths of the majority filter and the lifting (a GPU's; on the CPU where there is none) give the
NumPy paths' results, and extract_instances takes them for CUDA devices only."""

import numpy as np
import pytest
import torch
from synthetic_groups import CHANNELS, features_for, group_map, make_predictions, separated_unit_vectors

import iggt.instances.extract as extract
import iggt.instances.lifting as lifting
import iggt.instances.lifting_torch as lifting_torch
import iggt.instances.majority as majority
from iggt.instances import InstanceConfig, extract_instances, lift_instances, majority_filter
from iggt.instances.extract import table_device

# The torch path runs where the instance step puts it: a GPU when this machine has one.
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


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
        got = majority_filter(labels, radius, device=DEVICE)
        assert got.dtype == labels.dtype and np.array_equal(got, expected)
        assert not np.array_equal(got, labels)  # the speckle was filtered: the comparison means something


def test_torch_majority_filter_reads_memory_maps_and_radius_0_changes_nothing(rng, tmp_path, monkeypatch):
    monkeypatch.setattr(lifting, "CHUNK_PIXELS", 3 * 11 * 9)
    labels = speckled_labels(rng, (8, 11, 9), np.int32, 5)
    np.save(tmp_path / "labels.npy", labels)
    mapped = np.load(tmp_path / "labels.npy", mmap_mode="r")  # read-only, as a stored capture's
    assert np.array_equal(majority_filter(mapped, 1, device=DEVICE), majority_filter(labels, 1))
    assert np.array_equal(mapped, labels)  # the map is read, never written
    assert majority_filter(labels, 0, device=DEVICE) is labels


def messy_scene(rng, dtype=np.float32):
    """9 views of 10 x 12 with instances spanning views, NaN and inf in every input, ties in the
    confidence, negative and sparse IDs, instance 6 whose points are all non-finite, instance 7
    whose confidence cut and weights depend on leaving NaN out and clipping negatives to 0, and
    instance 8 whose [30, 70] percentile box holds none of its points, instance 9 of confidence 0
    and instance 10 whose confidence cut is NumPy's only in float32 arithmetic for float32 input."""
    labels = rng.integers(0, 6, size=(9, 10, 12)).astype(np.int32)
    labels[2:5] = np.where(labels[2:5] == 3, 0, labels[2:5])  # instance 3 leaves and comes back
    labels[0, 0, :4] = [-2, 900, 900, 6]
    labels[5, 5, 5] = 6
    points = (rng.normal(size=labels.shape + (3,)) * rng.uniform(1, 4, size=labels.shape + (1,))).astype(dtype)
    points += np.array([5.0, -2.0, 10.0], dtype)  # away from the origin, as a scene's
    points[labels == 6] = np.nan
    points[rng.random(labels.shape) < 0.05, 1] = np.inf
    confidence = rng.choice([0.0, 0.5, 1.0, 1.5, 2.0, 3.0], size=labels.shape).astype(dtype)  # ties at the cut
    confidence[rng.random(labels.shape) < 0.03] = np.nan
    confidence[rng.random(labels.shape) < 0.05] = -1.0  # counts as 0
    features = rng.normal(size=labels.shape + (4,)).astype(np.float32)
    features[rng.random(labels.shape) < 0.03, 2] = np.nan
    features[1, 2, 3, 0] = np.inf
    labels[7, 9, :6], labels[8, 9, :3], labels[8, 9, 3:6] = 7, 8, 9  # fewer pixels than the sample
    points[7, 9, :6] = rng.normal(size=(6, 3)) + 20
    confidence[7, 9, :6] = [-1, -1, 2, 2, np.nan, np.nan]
    points[8, 9, :3], confidence[8, 9, :3] = 10 * np.eye(3)[[1, 0, 2]], 1.0
    points[8, 9, 3:6], confidence[8, 9, 3:6] = rng.normal(size=(3, 3)), 0.0
    # sorted [a, a, b, b, b, b], b one float32 step above a: the cut a + (b - a) / 4 is a in float32
    # (the two a pixels, far away, are kept) and above a in float64 (they are set aside)
    low = np.float32(1.5)
    labels[6, 9, :6] = 10
    confidence[6, 9, :6] = [low, low] + [np.nextafter(low, np.float32(2))] * 4
    points[6, 9, :6] = rng.normal(size=(6, 3)) + np.array([50, 50, 0, 0, 0, 0])[:, None]
    return labels, points, confidence, features


def assert_same_table(got, expected, points):
    finite = points[np.isfinite(points).all(-1)]
    extent = float(np.max(finite.max(0) - finite.min(0)))
    assert np.array_equal(got.ids, expected.ids) and np.array_equal(got.pixel_counts, expected.pixel_counts)
    assert got.labels.dtype == expected.labels.dtype and np.array_equal(got.labels, expected.labels)
    assert np.allclose(got.mean_features, expected.mean_features, atol=1e-6, rtol=0)
    for name in ("centroids", "bbox_min", "bbox_max"):
        a, b = getattr(got, name), getattr(expected, name)
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == (len(expected.ids), 3)
        assert np.allclose(a, b, atol=1e-5 * extent, rtol=0, equal_nan=True), name


@pytest.mark.parametrize("chunk_pixels", [1, 3 * 120, 1 << 22])  # a view, 3 views, all views a chunk
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_lift_gives_the_numpy_table(rng, monkeypatch, chunk_pixels, dtype):
    """The geometry sample spans chunks (every 7th pixel of an instance, counted over the views),
    so a wrong stride offset, quantile rule or non-finite rule changes the boxes."""
    monkeypatch.setattr(lifting, "CHUNK_PIXELS", chunk_pixels)
    monkeypatch.setattr(lifting, "GEOMETRY_SAMPLE", 7)
    labels, points, confidence, features = messy_scene(rng, dtype)
    for percentile in (0.0, 5.0, 30.0):
        expected = lift_instances(labels, points, confidence, features, percentile)
        got = lift_instances(labels, points, confidence, features, percentile, device=DEVICE)
        assert_same_table(got, expected, points)
    assert np.isnan(got.centroids[list(got.ids).index(6)]).all()
    assert np.isfinite(np.delete(got.centroids, list(got.ids).index(6), 0)).all()


def test_torch_lift_reads_memory_maps(rng, tmp_path, monkeypatch):
    monkeypatch.setattr(lifting, "CHUNK_PIXELS", 2 * 120)
    monkeypatch.setattr(lifting, "GEOMETRY_SAMPLE", 5)
    arrays = dict(zip(("labels", "points", "confidence", "features"), messy_scene(rng), strict=True))
    for name, array in arrays.items():
        np.save(tmp_path / f"{name}.npy", array)
    loaded = {name: np.load(tmp_path / f"{name}.npy", mmap_mode="r") for name in arrays}
    writable = np.memmap(tmp_path / "labels.raw", np.int32, "w+", shape=arrays["labels"].shape)
    writable[:] = arrays["labels"]
    expected = lift_instances(*arrays.values(), 5.0)
    assert_same_table(lift_instances(*loaded.values(), 5.0, device=DEVICE), expected, arrays["points"])
    mixed = (writable, loaded["points"], loaded["confidence"], loaded["features"])
    assert_same_table(lift_instances(*mixed, 5.0, device=DEVICE), expected, arrays["points"])


def test_torch_lift_of_views_without_instances_is_empty(rng):
    labels = np.zeros((2, 3, 4), np.int32)
    _, points, confidence, features = messy_scene(rng)
    got = lift_instances(labels, points[:2, :3, :4], confidence[:2, :3, :4], features[:2, :3, :4], device=DEVICE)
    assert got.ids.shape == (0,) and got.centroids.shape == got.bbox_min.shape == (0, 3)
    assert got.mean_features.shape == (0, 4) and got.pixel_counts.shape == (0, 2)


def test_the_torch_path_is_taken_for_cuda_devices_only(monkeypatch):
    assert table_device(InstanceConfig(device="cpu")) is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert table_device(InstanceConfig(device="auto")) is None
    # a machine with a GPU (asked about, never used: resolving a device allocates nothing)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert table_device(InstanceConfig(device="auto")) == torch.device("cuda")
    assert table_device(InstanceConfig(device="cuda:1")) == torch.device("cuda:1")
    assert table_device(InstanceConfig(device="cpu")) is None


def test_extract_instances_through_the_torch_path_gives_the_host_result(rng, monkeypatch):
    """extract_instances hands the decision's device to both the filter and the lifting (the
    torch entry points are watched, not replaced: they still compute the result)."""
    groups = group_map()
    features = features_for(groups, separated_unit_vectors(6, CHANNELS, 0.8, rng), 0.05, rng)
    predictions = make_predictions(features)
    config = InstanceConfig(device="cpu", majority_radius=2)
    expected = extract_instances(predictions, config)
    devices = []

    def watched(function):
        def call(*args):
            devices.append(args[-1])
            return function(*args)

        return call

    monkeypatch.setattr(majority, "majority_filter_torch", watched(majority.majority_filter_torch))
    monkeypatch.setattr(lifting_torch, "summarise_on_device", watched(lifting_torch.summarise_on_device))
    monkeypatch.setattr(extract, "table_device", lambda config: DEVICE)
    got = extract_instances(predictions, config)
    assert devices == [DEVICE, DEVICE]
    assert expected.num_instances >= 4
    assert_same_table(got, expected, predictions.world_points)
