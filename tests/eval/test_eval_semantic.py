"""The open-vocabulary rows of the runner: class maps, the oracle, and 2D / 3D scores."""

from dataclasses import replace

import numpy as np
import pytest
from test_eval_benchmark import exact_setup

from iggt.eval.benchmark import BenchmarkConfig, evaluate_scene
from iggt.eval.semantic import class_map, oracle_classes, oracle_labeller

CLASS_NAMES = {11: "box", 12: "ball", 13: "cone"}


def named_scene(make_scene):
    return replace(make_scene(num_views=3), class_names=CLASS_NAMES)


def constant_labeller(class_id: int):
    return lambda predictions, labels, truth, names: {int(i): class_id for i in np.unique(labels) if i > 0}


def test_class_map_paints_each_instance_with_its_class():
    labels = np.array([[[0, 5, 5], [7, 7, 9]]])
    np.testing.assert_array_equal(class_map(labels, {5: 12, 7: 11}), [[[0, 12, 12], [11, 11, 0]]])


def test_oracle_takes_the_majority_class_under_each_predicted_instance():
    labels = np.array([[[1, 1, 1, 2], [2, 2, 0, 3]]])
    gt = np.array([[[4, 4, 6, 0], [5, 0, 6, 0]]])
    # instance 1: two pixels of 4, one of 6; instance 2: one pixel of 5 (class 0 does not vote); 3: none
    assert oracle_classes(labels, gt) == {1: 4, 2: 5}


def test_oracle_on_exact_masks_scores_100_and_a_wrong_labeller_less(make_scene):
    scene = named_scene(make_scene)
    config = BenchmarkConfig(img_size=56, patch_size=14, tasks=("instances", "semantic"))
    predict, segmenters = exact_setup(scene, config)
    labellers = {"oracle classes": oracle_labeller, "always box": constant_labeller(11)}
    rows = {row["method"]: row for row in evaluate_scene(scene, "s", predict, segmenters, config, labellers)}
    assert set(rows) == {"exact", "nothing", "oracle classes", "always box"}
    oracle = rows["oracle classes"]
    for key in ("miou_2d", "macc_2d", "miou_3d", "macc_3d"):
        assert oracle[key] == pytest.approx(1.0)
    # Everything "box": IoU(box) = its share of the evaluated pixels, the other two classes 0.
    wrong = rows["always box"]
    assert wrong["macc_2d"] == pytest.approx(1 / 3)
    assert 0 < wrong["miou_2d"] < 1 / 3
    assert "miou_2d" not in rows["exact"]  # the geometry/instance row carries no semantic columns


def test_oracle_is_bounded_by_the_predicted_masks(make_scene):
    """Masks that merge two objects: one class for both, so even the oracle loses one of them."""
    scene = named_scene(make_scene)
    config = BenchmarkConfig(img_size=56, patch_size=14, tasks=("semantic",))
    predict, _ = exact_setup(scene, config)
    merged = {"merged": lambda predictions: np.where(scene_truth_ids(scene, config) > 0, 1, 0)}
    rows = evaluate_scene(scene, "s", predict, merged, config, {"oracle classes": oracle_labeller})
    oracle = next(row for row in rows if row["method"] == "oracle classes")
    assert oracle["macc_2d"] == pytest.approx(1 / 3) and oracle["miou_2d"] < 1 / 3 + 1e-9


def scene_truth_ids(scene, config):
    from iggt.eval.ground_truth import prepare_views, select_views

    views = select_views(scene.num_views, config.views)
    return prepare_views(scene, views, config.img_size, config.patch_size, config.preprocess_mode)[1].instance_ids


def test_scenes_without_class_names_get_no_semantic_rows(make_scene):
    scene = make_scene(num_views=3)  # class_names empty
    config = BenchmarkConfig(img_size=56, patch_size=14, tasks=("semantic",))
    predict, segmenters = exact_setup(scene, config)
    rows = evaluate_scene(scene, "s", predict, segmenters, config, {"oracle classes": oracle_labeller})
    assert [row["method"] for row in rows] == ["exact"]
