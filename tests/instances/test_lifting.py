"""lift_instances (3D summaries), the xyz + colour baseline and the point sources."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score
from synthetic_groups import CHANNELS, features_for, group_map, make_predictions, separated_unit_vectors

from iggt.errors import ConfigError, InputError
from iggt.instances import cluster_positions_colours, extract_instances, lift_instances, scene_points
from iggt.instances.points import confident_pixels


def test_boxes_and_centroids_ignore_low_confidence_outliers(rng):
    labels = np.zeros((2, 10, 10), dtype=np.int32)
    labels[:, :, :5], labels[:, :, 5:] = 1, 2
    true_centres = np.array([[0.0, 0.0, 3.0], [4.0, -1.0, 6.0]])
    points = true_centres[labels - 1] + rng.uniform(-0.5, 0.5, size=labels.shape + (3,))
    confidence = np.full(labels.shape, 5.0)
    outliers = np.zeros(labels.shape, dtype=bool)
    outliers[0, 0, 0] = outliers[1, 9, 9] = True
    points[outliers] = 1000.0
    confidence[outliers] = 0.1
    features = rng.normal(size=labels.shape + (4,)).astype(np.float32)
    instances = lift_instances(labels, points, confidence, features, box_percentile=0.0)
    assert np.allclose(instances.centroids, true_centres, atol=0.1)
    assert np.all(instances.bbox_min >= true_centres - 0.5) and np.all(instances.bbox_max <= true_centres + 0.5)
    assert np.all(instances.bbox_max - instances.bbox_min > 0.8)
    assert np.array_equal(instances.pixel_counts, [[50, 50], [50, 50]])


def test_mean_features_are_unit_means_of_each_instance(rng):
    labels = np.array([[[1, 1, 3], [3, 0, 3]]], dtype=np.int32)
    features = rng.normal(size=(1, 2, 3, 4)).astype(np.float32)
    points = rng.normal(size=(1, 2, 3, 3))
    instances = lift_instances(labels, points, np.ones((1, 2, 3)), features)
    expected = features[labels == 3].mean(0)
    assert np.array_equal(instances.ids, [1, 3])
    assert np.allclose(instances.mean_features[1], expected / np.linalg.norm(expected), atol=1e-6)
    assert np.allclose(np.linalg.norm(instances.mean_features, axis=1), 1, atol=1e-6)


def test_instance_without_finite_points_gets_nan_geometry(rng):
    labels = np.array([[[1, 2]]], dtype=np.int32)
    points = np.array([[[[0.0, 1.0, 2.0], [np.nan, 0.0, 0.0]]]])
    instances = lift_instances(labels, points, np.ones((1, 1, 2)), np.ones((1, 1, 2, 3), np.float32))
    assert np.allclose(instances.centroids[0], [0, 1, 2]) and np.all(np.isnan(instances.centroids[1]))


def _reference_summary(labels, points, confidence, features, box_percentile, sample):
    """Per ID: pixel counts per view, the unit mean feature, and the geometry of every
    ``ceil(n / sample)``-th of its pixels in pixel order, computed over the whole capture at once."""
    from iggt.instances.lifting import _robust_geometry

    ids = np.unique(labels[labels > 0])
    flat = labels.reshape(-1)
    counts = np.stack([(labels == i).sum((1, 2)) for i in ids])
    means, geometry = [], []
    for instance_id in ids:
        members = np.flatnonzero(flat == instance_id)
        total = features.reshape(-1, features.shape[-1])[members].astype(np.float64).sum(0)
        means.append(total / np.linalg.norm(total))
        chosen = members[:: -(-len(members) // sample)]
        geometry.append(_robust_geometry(points.reshape(-1, 3)[chosen], confidence.reshape(-1)[chosen], box_percentile))
    return ids, counts, np.array(means), np.array([g[0] for g in geometry]), np.array([g[1] for g in geometry])


@pytest.mark.parametrize("chunk_pixels", [1, 100, 1 << 22])
def test_lift_in_view_chunks_equals_the_whole_capture_at_once(rng, monkeypatch, chunk_pixels):
    """Long captures are lifted a few views at a time (memory maps on disk): counts, means and the
    geometry's pixel subsets (instances larger than the sample span several chunks) are the ones a
    pass over the whole capture gives."""
    import iggt.instances.lifting as lifting

    monkeypatch.setattr(lifting, "CHUNK_PIXELS", chunk_pixels)
    monkeypatch.setattr(lifting, "GEOMETRY_SAMPLE", 7)
    labels = rng.integers(0, 5, size=(9, 6, 8)).astype(np.int32)
    labels[3:6] = np.where(labels[3:6] == 2, 0, labels[3:6])  # instance 2 leaves and comes back
    labels[0, 0, :3] = [-1, 900, 900]  # negative = none; a large, sparse ID
    points = rng.normal(size=labels.shape + (3,)) * rng.uniform(1, 4, size=labels.shape + (1,))
    confidence = rng.uniform(0.5, 3, size=labels.shape)
    features = rng.normal(size=labels.shape + (4,)).astype(np.float32)
    features[1, 2, 3, 0] = np.nan  # a non-finite feature counts in no mean
    got = lift_instances(labels, points, confidence, features, box_percentile=5.0)
    kept = np.where(np.isfinite(features).all(-1, keepdims=True), features, 0)
    ids, counts, means, centroids, low = _reference_summary(labels, points, confidence, kept, 5.0, 7)
    assert np.array_equal(got.ids, ids) and np.array_equal(got.pixel_counts, counts)
    assert np.allclose(got.mean_features, means, atol=1e-6)
    assert np.allclose(got.centroids, centroids, atol=1e-5) and np.allclose(got.bbox_min, low, atol=1e-5)


def test_lift_rejects_mismatched_shapes():
    with pytest.raises(InputError, match="must share"):
        lift_instances(
            np.zeros((1, 2, 2), np.int32), np.zeros((1, 2, 3, 3)), np.zeros((1, 2, 2)), np.zeros((1, 2, 2, 4))
        )


def test_extracted_instances_have_centroids_of_their_points(rng):
    groups = group_map()
    centres = separated_unit_vectors(6, CHANNELS, 0.8, rng)
    places = rng.normal(scale=5, size=(6, 3))
    points = (places[groups] + rng.normal(scale=0.1, size=groups.shape + (3,))).astype(np.float32)
    instances = extract_instances(make_predictions(features_for(groups, centres, 0.03, rng), points))
    for row, instance_id in enumerate(instances.ids):
        group = np.bincount(groups[instances.labels == instance_id]).argmax()
        assert np.allclose(instances.centroids[row], places[group], atol=0.1)


def test_position_colour_baseline_separates_coloured_objects(rng):
    groups = np.zeros((3, 24, 24), dtype=np.int64)
    groups[:, :, 8:16], groups[:, :, 16:] = 1, 2
    colours = np.array([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9]])
    images = (colours[groups] + rng.normal(scale=0.01, size=groups.shape + (3,))).astype(np.float32)
    points = np.array([[-2.0, 0, 5], [0, 0, 5], [2, 0, 5]])[groups] + rng.normal(scale=0.1, size=groups.shape + (3,))
    features = features_for(np.zeros_like(groups), separated_unit_vectors(1, CHANNELS, 0, rng), 0.01, rng)
    predictions = make_predictions(features, points.astype(np.float32), images=images)
    instances = cluster_positions_colours(predictions)
    assert instances.num_instances == 3
    assert adjusted_rand_score(groups.ravel(), instances.labels.ravel()) >= 0.95


def test_depth_point_source_unprojects_depth(rng):
    predictions = make_predictions(features_for(group_map(), separated_unit_vectors(6, CHANNELS, 0.8, rng), 0.03, rng))
    points, confidence = scene_points(predictions, "depth")
    fx, cx = predictions.intrinsic[0, 0, 0], predictions.intrinsic[0, 0, 2]
    # view 0 has the identity pose: the point of pixel (u=5, v=7) is ((5 - cx) / fx * d, ..., d)
    assert np.allclose(points[0, 7, 5], [(5 - cx) / fx * 2.0, (7 - 12) / 20.0 * 2.0, 2.0], atol=1e-5)
    # view 1 is shifted by t_x = 0.1 (camera-from-world): world x = camera x - 0.1
    assert np.allclose(points[1, 7, 5, 0], points[0, 7, 5, 0] - 0.1, atol=1e-5)
    assert np.array_equal(confidence, predictions.depth_conf)
    with pytest.raises(ConfigError, match="unknown point source 'lidar'"):
        scene_points(predictions, "lidar")


def test_the_confidence_cut_keeps_valid_pixels_at_or_above_the_quantile_and_threshold():
    confidence = np.array([5.0, 1.0, np.nan, 3.0, 2.0, 4.0, 100.0])
    valid = np.isfinite(confidence) & (np.arange(7) != 6)  # the last pixel is excluded despite its confidence
    # The 0.25-quantile of the valid [5, 1, 3, 2, 4] is 2 (linear interpolation).
    assert confident_pixels(confidence, valid, 0.25).tolist() == [True, False, False, True, True, True, False]
    above_threshold = confident_pixels(confidence, valid, 0.25, threshold=3.5)
    assert above_threshold.tolist() == [True, False, False, False, False, True, False]
    assert not confident_pixels(confidence, np.zeros(7, bool), 0.25).any()
