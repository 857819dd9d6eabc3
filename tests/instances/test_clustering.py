"""cluster_features and extract_instances on scenes with known groups."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score
from synthetic_groups import CHANNELS, features_for, group_map, make_predictions, separated_unit_vectors

from iggt.errors import ConfigError, InputError
from iggt.instances import InstanceConfig, cluster_features, extract_instances, majority_filter


def test_known_groups_recovered_with_one_id_across_views(rng):
    groups = group_map()
    centres = separated_unit_vectors(6, CHANNELS, 0.8, rng)
    instances = extract_instances(make_predictions(features_for(groups, centres, 0.03, rng)))
    labels = instances.labels
    assert adjusted_rand_score(groups.ravel(), labels.ravel()) >= 0.95
    # group 1 lives in views 0 and 2: one ID, the same in both, and on no other pixel
    ids_of_group_1 = np.unique(labels[groups == 1])
    assert len(ids_of_group_1) == 1 and ids_of_group_1[0] > 0
    assert np.array_equal(instances.visible_views(int(ids_of_group_1[0])), [True, False, True])
    assert np.array_equal(labels == ids_of_group_1[0], groups == 1)


def test_ids_are_ordered_by_size_and_counts_match_labels(rng):
    groups = group_map()
    centres = separated_unit_vectors(6, CHANNELS, 0.8, rng)
    instances = extract_instances(make_predictions(features_for(groups, centres, 0.03, rng)))
    totals = instances.pixel_counts.sum(1)
    assert np.array_equal(instances.ids, np.arange(1, len(instances.ids) + 1))
    assert np.all(np.diff(totals) <= 0)
    for row, instance_id in enumerate(instances.ids):
        per_view = (instances.labels == instance_id).sum((1, 2))
        assert np.array_equal(instances.pixel_counts[row], per_view)


def test_far_away_features_are_noise_unless_noise_distance_is_none(rng):
    groups = group_map()
    centres = separated_unit_vectors(6, CHANNELS, 0.8, rng)
    features = features_for(groups, centres, 0.03, rng)
    outliers = (rng.random(groups.shape) < 0.03) & (groups == 1)
    candidates = features_for(np.zeros(2000, np.int64), rng.normal(size=(1, CHANNELS)), 10.0, rng)
    far = np.linalg.norm(candidates[:, None] - centres[None], axis=-1).min(1) > 0.8
    features[outliers] = candidates[far][: outliers.sum()]  # scattered, none near a group
    flat = features.reshape(-1, CHANNELS)
    labels = cluster_features(flat, config=InstanceConfig(min_instance_size=6))
    assert outliers.sum() >= 5
    assert np.all(labels[outliers.ravel()] == 0)
    assert np.all(labels[~outliers.ravel()] > 0)
    assigned = cluster_features(flat, config=InstanceConfig(min_instance_size=6, noise_distance=None))
    assert np.all(assigned > 0)
    assert adjusted_rand_score(assigned[~outliers.ravel()], labels[~outliers.ravel()]) == 1.0


def test_min_instance_size_drops_small_groups(rng):
    groups = group_map()
    flat = features_for(groups, separated_unit_vectors(6, CHANNELS, 0.8, rng), 0.03, rng).reshape(-1, CHANNELS)
    small = (groups == 5).ravel()  # 12 pixels
    kept = cluster_features(flat, config=InstanceConfig(min_instance_size=6))
    dropped = cluster_features(flat, config=InstanceConfig(min_instance_size=40))
    assert len(np.unique(kept[small])) == 1 and kept[small][0] > 0
    assert np.all(dropped[small] == 0)
    assert dropped.max() == kept.max() - 1


def test_merge_threshold_merges_near_duplicate_groups(rng):
    groups = group_map()
    centres = separated_unit_vectors(6, CHANNELS, 0.8, rng)
    direction = rng.normal(size=CHANNELS)
    direction -= direction @ centres[3] * centres[3]
    centres[4] = centres[3] + 0.15 * direction / np.linalg.norm(direction)  # 0.15 from group 3
    flat = features_for(groups, centres, 0.015, rng).reshape(-1, CHANNELS)
    merged = cluster_features(flat, config=InstanceConfig(merge_threshold=0.25))
    separate = cluster_features(flat, config=InstanceConfig(merge_threshold=0.05))
    g3, g4 = (groups == 3).ravel(), (groups == 4).ravel()
    assert len(np.unique(merged[g3 | g4])) == 1
    assert len(np.unique(separate[g3])) == 1 and len(np.unique(separate[g4])) == 1
    assert separate[g3][0] != separate[g4][0]


def test_refinement_finds_a_group_the_first_sample_misses(rng):
    groups = group_map()
    flat = features_for(groups, separated_unit_vectors(6, CHANNELS, 0.8, rng), 0.03, rng).reshape(-1, CHANNELS)
    small = (groups == 5).ravel()
    config = dict(sample_size=48, min_instance_size=6, seed=3)
    once = cluster_features(flat, config=InstanceConfig(refine_rounds=0, **config))
    refined = cluster_features(flat, config=InstanceConfig(refine_rounds=1, **config))
    assert np.all(once[small] == 0)
    assert len(np.unique(refined[small])) == 1 and refined[small][0] > 0
    assert adjusted_rand_score(groups.ravel(), refined) >= 0.95


def test_positions_separate_lookalike_objects(rng):
    groups = np.zeros((3, 24, 24), dtype=np.int64)
    groups[:, :, 12:] = 1
    centres = separated_unit_vectors(2, CHANNELS, 0.8, rng)
    features = features_for(groups, centres, 0.03, rng)
    points = rng.normal(scale=0.1, size=groups.shape + (3,))
    points[:, :12, :12, 0] += 5  # the top-left and bottom-left quarters: same feature, 10 apart
    points[:, 12:, :12, 0] -= 5
    flat_points = points.reshape(-1, 3)
    without = cluster_features(features.reshape(-1, CHANNELS))
    with_positions = cluster_features(features.reshape(-1, CHANNELS), flat_points, InstanceConfig(position_weight=1.0))
    left = (groups == 0).ravel()
    assert len(np.unique(without[left])) == 1
    assert len(np.unique(with_positions[left])) == 2


def test_majority_filter_removes_speckle(rng):
    groups = group_map()
    centres = separated_unit_vectors(6, CHANNELS, 0.8, rng)
    speckle = (rng.random(groups.shape) < 0.03) & (groups == 1)
    speckle[:, [0, -1]] = speckle[:, :, [0, -1]] = False
    features = features_for(np.where(speckle, 2, groups), centres, 0.02, rng)
    plain = extract_instances(make_predictions(features), InstanceConfig(majority_radius=0)).labels
    filtered = extract_instances(make_predictions(features), InstanceConfig(majority_radius=1)).labels
    group_1_id = np.bincount(filtered[groups == 1]).argmax()
    assert speckle.sum() >= 10
    assert np.mean(filtered[speckle] == group_1_id) >= 0.9
    assert np.mean(plain[speckle] == group_1_id) <= 0.1
    assert adjusted_rand_score(groups.ravel(), filtered.ravel()) >= 0.95


def test_majority_filter_keeps_edges_and_ties():
    labels = np.zeros((1, 5, 6), dtype=np.int32)
    labels[0, :, 3:] = 2  # a straight boundary stays where it is
    labels[0, 2, 1] = 7  # an isolated pixel is outvoted
    expected = labels.copy()
    expected[0, 2, 1] = 0
    assert np.array_equal(majority_filter(labels, 1), expected)
    tie = np.array([[[1, 2], [2, 1]]], dtype=np.int32)  # every label ties: each pixel keeps its own
    assert np.array_equal(majority_filter(tie, 1), tie)


def brute_force_majority(view, radius):
    """The majority vote written out pixel by pixel: own label on a tie, window clipped at the border."""
    height, width = view.shape
    out = view.copy()
    for row in range(height):
        for col in range(width):
            window = view[max(row - radius, 0) : row + radius + 1, max(col - radius, 0) : col + radius + 1]
            values, counts = np.unique(window, return_counts=True)
            own = counts[values == view[row, col]][0]
            if own < counts.max():
                # the first label, in window order, among the most voted
                winners = set(values[counts == counts.max()].tolist())
                out[row, col] = next(v for v in window.ravel() if v in winners)
    return out


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint16, np.uint32])
@pytest.mark.parametrize("radius", [1, 2])
def test_majority_filter_is_the_vote_written_out_for_any_label_type(dtype, radius):
    rng = np.random.default_rng(radius)
    labels = rng.integers(0, 4, (2, 9, 11)).astype(dtype)
    labels[1, :4] = np.iinfo(dtype).max if dtype in (np.uint16, np.uint32) else 70_000  # large IDs survive
    filtered = majority_filter(labels, radius)
    assert filtered.dtype == labels.dtype
    for view in range(2):
        np.testing.assert_array_equal(filtered[view], brute_force_majority(labels[view], radius))


def test_same_seed_same_labels_and_labels_dtype(rng):
    flat = features_for(group_map(), separated_unit_vectors(6, CHANNELS, 0.8, rng), 0.03, rng).reshape(-1, CHANNELS)
    first, second = cluster_features(flat), cluster_features(flat)
    assert first.dtype == np.int32 and np.array_equal(first, second)


def test_non_finite_rows_are_noise(rng):
    flat = features_for(group_map(), separated_unit_vectors(6, CHANNELS, 0.8, rng), 0.03, rng).reshape(-1, CHANNELS)
    flat[:10] = np.nan
    labels = cluster_features(flat)
    assert np.all(labels[:10] == 0) and np.all(labels[10:] > 0)


def test_bad_inputs_and_config_values_raise():
    with pytest.raises(InputError, match="features must be a non-empty"):
        cluster_features(np.zeros((0, 8), np.float32))
    with pytest.raises(InputError, match="positions must be"):
        cluster_features(np.zeros((10, 8), np.float32), np.zeros((9, 3)))
    with pytest.raises(ConfigError, match="merge_threshold"):
        InstanceConfig(merge_threshold=-1)
    with pytest.raises(ConfigError, match="unknown granularity 'huge'"):
        InstanceConfig.for_granularity("huge")


def test_granularity_presets_order_merge_thresholds():
    coarse, medium, fine = (InstanceConfig.for_granularity(g) for g in ("coarse", "medium", "fine"))
    assert coarse.merge_threshold > medium.merge_threshold > fine.merge_threshold
    assert coarse.min_pixels(10**6) > medium.min_pixels(10**6) > fine.min_pixels(10**6)
    assert InstanceConfig.for_granularity("fine", seed=7).seed == 7
