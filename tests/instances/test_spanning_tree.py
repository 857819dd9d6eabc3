"""The device spanning tree of HDBSCAN (a GPU's; on the CPU where there is none) is a minimum spanning
tree of hdbscan's own mutual reachability graph, its clusters are hdbscan's, and the clustering takes
it for CUDA devices only."""

import hdbscan
import numpy as np
import pytest
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from synthetic_groups import CHANNELS, features_for, separated_unit_vectors

import iggt.instances.clustering as clustering
import iggt.instances.spanning_tree as spanning_tree
from iggt.instances import InstanceConfig
from iggt.instances.clustering import cluster_features, sample_clusters
from iggt.instances.spanning_tree import hdbscan_labels, mutual_reachability_tree
from iggt.instances.transfer import torch_path_device

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def blobs(rng, count, dims, centres=8, noise_share=0.1):
    """Gaussian blobs of different spreads with uniform noise around them, float32 as the sample."""
    means = rng.normal(size=(centres, dims)) * 4
    points = means[rng.integers(0, centres, count)] + rng.normal(size=(count, dims)) * rng.uniform(0.2, 1.0, (count, 1))
    noisy = rng.random(count) < noise_share
    points[noisy] = rng.uniform(-10, 10, size=(noisy.sum(), dims))
    return points.astype(np.float32)


def hdbscan_reference(points, min_cluster_size, min_samples):
    return hdbscan.HDBSCAN(
        min_cluster_size=min_cluster_size,
        min_samples=min_samples,
        algorithm="best",
        approx_min_span_tree=False,
        core_dist_n_jobs=1,
        gen_min_span_tree=True,
    ).fit(points)


def assert_spanning_tree(tree, count):
    assert tree.shape == (count - 1, 3)
    ends = tree[:, :2].astype(np.int64)
    assert (ends[:, 0] != ends[:, 1]).all()
    graph = coo_matrix((np.ones(len(ends)), (ends[:, 0], ends[:, 1])), shape=(count, count))
    assert connected_components(graph, directed=False)[0] == 1  # M - 1 edges joining all: a tree


def same_partition(a, b):
    """Labels equal up to renaming the clusters (noise, -1, stays noise)."""
    pairs = np.unique(np.stack([a, b], 1), axis=0)
    return (
        len(np.unique(pairs[:, 0])) == len(pairs) == len(np.unique(pairs[:, 1]))
        and ((pairs[:, 0] == -1) == (pairs[:, 1] == -1)).all()
    )


@pytest.mark.parametrize("count,dims,min_samples", [(700, 3, 9), (900, 11, 4)])
def test_the_tree_has_the_weights_of_hdbscans_tree(rng, count, dims, min_samples):
    points = blobs(rng, count, dims)
    reference = hdbscan_reference(points, 20, min_samples).minimum_spanning_tree_.to_numpy()
    tree = mutual_reachability_tree(points, min_samples, DEVICE)
    assert_spanning_tree(tree, count)
    # every minimum spanning tree of a graph has the same sorted weights
    np.testing.assert_allclose(np.sort(tree[:, 2]), np.sort(reference[:, 2]), rtol=1e-12, atol=1e-12)


def test_ties_do_not_close_cycles(rng):
    """Points on a small integer grid, many repeated: nearly every weight is tied with others."""
    points = rng.integers(0, 4, size=(400, 2)).astype(np.float32)
    reference = hdbscan_reference(points, 10, 5).minimum_spanning_tree_.to_numpy()
    tree = mutual_reachability_tree(points, 5, DEVICE)
    assert_spanning_tree(tree, len(points))
    assert len(np.unique(tree[:, 2])) < 10  # the ties the test is about
    assert tree[:, 2].sum() == pytest.approx(reference[:, 2].sum(), abs=1e-9)


def test_blocks_recomputed_or_kept_give_the_same_tree(rng, monkeypatch):
    points = blobs(rng, 500, 5)
    kept = mutual_reachability_tree(points, 9, DEVICE)
    monkeypatch.setattr(spanning_tree, "CHUNK_ENTRIES", 37 * 500)  # 37 rows a block: the last one short
    monkeypatch.setattr(spanning_tree, "CACHE_BYTES", 0)  # every round recomputes its blocks
    recomputed = mutual_reachability_tree(points, 9, DEVICE)
    assert np.array_equal(np.sort(kept[:, 2]), np.sort(recomputed[:, 2]))
    assert_spanning_tree(recomputed, len(points))


def renamed(labels, reference):
    """``labels`` with each cluster renamed to the reference cluster holding most of its points."""
    result = labels.copy()
    for cluster in np.unique(labels[labels >= 0]):
        members = reference[labels == cluster]
        result[labels == cluster] = np.bincount(members + 1).argmax() - 1
    return result


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_labels_are_hdbscans_clusters_but_where_a_tie_joins_them(seed):
    """A point whose cheapest edges into two clusters weigh the same (its own core distance) may
    hang from either in a minimum spanning tree, so it may join the other cluster than hdbscan's."""
    points = blobs(np.random.default_rng(seed), 1200, 8)
    expected = hdbscan_reference(points, 10, 9).labels_
    got = renamed(hdbscan_labels(points, 10, 9, DEVICE), expected)
    assert expected.max() >= 4 and (expected == -1).any()  # clusters and noise: the comparison means something
    differ = np.flatnonzero(got != expected)
    assert len(differ) <= 0.005 * len(points)
    distance = np.linalg.norm(points[:, None].astype(np.float64) - points[None], axis=-1)
    core = np.sort(distance, 1)[:, 9]
    for i in differ:
        if expected[i] >= 0 and got[i] >= 0:  # moved between clusters: tied edges into both
            for cluster in (expected[i], got[i]):
                reach = np.maximum(distance[i], core)[expected == cluster]
                assert reach.min() <= core[i] + 1e-12


def test_sample_clusters_on_a_device_gives_the_host_centres(rng):
    sample = blobs(rng, 800, 6)
    host_centres, host_counts = sample_clusters(sample, 10)
    centres, counts = sample_clusters(sample, 10, DEVICE)
    order, host_order = np.lexsort(centres.T), np.lexsort(host_centres.T)
    np.testing.assert_allclose(centres[order], host_centres[host_order], rtol=1e-6, atol=1e-6)
    assert np.array_equal(counts[order], host_counts[host_order])


def test_fewer_points_than_neighbours_are_capped_as_hdbscan_caps_them(rng):
    points = blobs(rng, 7, 3, noise_share=0.0)
    expected = hdbscan_reference(points, 5, 9).labels_
    assert same_partition(hdbscan_labels(points, 5, 9, DEVICE), expected)


def test_the_spanning_tree_is_taken_for_cuda_devices_only(monkeypatch):
    assert torch_path_device("cpu") is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert torch_path_device("auto") is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert torch_path_device("auto") == torch.device("cuda")
    assert torch_path_device("cuda:1") == torch.device("cuda:1")


@pytest.mark.parametrize("confidence_dtype", [None, np.float32, np.float64])
def test_cluster_features_on_a_device_gives_the_host_labels(rng, monkeypatch, confidence_dtype):
    """The device path of cluster_features (pixel-wide arrays and the tree on the device; watched,
    not replaced) against the host path: the same labels, bit for bit, on features with NaN and inf
    rows and a confidence with ties, NaN and a cut, through both rounds."""
    centres = separated_unit_vectors(7, CHANNELS, 0.8, rng)
    features = features_for(rng.integers(0, 6, 12_000), centres[:6], 0.05, rng)
    # an instance too small to form a cluster in the first sample: the refine round finds it
    small = rng.choice(len(features), size=24, replace=False)
    features[small] = centres[6] + 0.02 * rng.normal(size=(len(small), CHANNELS))
    features[rng.random(len(features)) < 0.02] = np.nan
    features[rng.random(len(features)) < 0.01, 1] = np.inf
    confidence = None
    if confidence_dtype is not None:
        confidence = np.round(rng.random(len(features)) * 8).astype(confidence_dtype)  # many ties
        confidence[rng.random(len(features)) < 0.03] = np.nan
    config = InstanceConfig(device="cpu", sample_size=800, confidence_quantile=0.3)
    samples = {"host": [], "device": []}

    def recorded(path):
        def call(sample, min_cluster_size, device=None):
            samples[path].append((sample.copy(), min_cluster_size))
            return sample_clusters(sample, min_cluster_size, device)

        return call

    monkeypatch.setattr(clustering, "sample_clusters", recorded("host"))
    expected = cluster_features(features, config=config, confidence=confidence)
    devices = []

    def watched(points, min_cluster_size, min_samples, device):
        devices.append(device)
        return hdbscan_labels(points, min_cluster_size, min_samples, device)

    monkeypatch.setattr(clustering, "sample_clusters", recorded("device"))
    monkeypatch.setattr(clustering, "hdbscan_labels", watched)
    monkeypatch.setattr(clustering, "torch_path_device", lambda spec: DEVICE)
    got = cluster_features(features, config=config, confidence=confidence)
    assert len(devices) == 2 and set(devices) == {DEVICE}  # both rounds: the refine round found noise to redo
    # the same pixels sampled in each round (the confidence cut, the pool and the draws agree)
    assert len(samples["host"]) == len(samples["device"]) == 2
    for (host, host_size), (device, device_size) in zip(samples["host"], samples["device"], strict=True):
        assert host_size == device_size and np.array_equal(host, device, equal_nan=True)
    assert len(np.unique(expected)) >= 5 and (expected == 0).any()
    assert got.dtype == expected.dtype == np.int32 and np.array_equal(got, expected)


def test_cluster_features_on_a_device_without_confident_pixels_labels_nothing(monkeypatch):
    monkeypatch.setattr(clustering, "torch_path_device", lambda spec: DEVICE)
    features = np.random.default_rng(0).normal(size=(500, 4)).astype(np.float32)
    confidence = np.full(500, np.nan, np.float32)
    got = cluster_features(features, config=InstanceConfig(device="cpu"), confidence=confidence)
    assert got.dtype == np.int32 and not got.any()


def test_the_device_path_runs_only_where_the_pixels_fit(monkeypatch):
    """Half the GPU's free memory bounds the device path's arrays; beyond it the host path runs."""
    gigabyte = 1 << 30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (20 * gigabyte, 24 * gigabyte))
    cuda = torch.device("cuda")
    assert clustering.fits_on_device(16_934_400, 8, cuda)  # 100 frames at 336 x 504: 1.6 GB
    assert not clustering.fits_on_device(169_344_000, 8, cuda)  # 1,000 frames: 16 GB > 10 GB
    assert clustering.fits_on_device(169_344_000, 8, torch.device("cpu"))  # no GPU memory to run out of
    taken = []
    monkeypatch.setattr(clustering, "torch_path_device", lambda spec: cuda)
    monkeypatch.setattr(clustering, "fits_on_device", lambda pixels, dims, device: taken.append(pixels) or False)
    features = np.random.default_rng(0).normal(size=(300, 4)).astype(np.float32)
    # the host path (the assignment on the CPU) although the decision named a GPU
    labels = cluster_features(features, config=InstanceConfig(device="cpu"))
    assert taken == [300] and labels.shape == (300,)
