"""The runner on exact predictions, the ground-truth mapping, and the written reports."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from iggt.errors import ConfigError
from iggt.eval.alignment import Similarity
from iggt.eval.benchmark import BenchmarkConfig, run_benchmark
from iggt.eval.ground_truth import prepare_views, select_views
from iggt.eval.report import TASK_COLUMNS, interval_summary, write_reports
from iggt.geometry import depth_to_world_points
from iggt.structures.predictions import Predictions

WORLD_CHANGE = Similarity(3.0, Rotation.from_rotvec([0.3, -0.2, 0.5]).as_matrix(), np.array([1.0, -2.0, 0.5]))


def predictions_in_other_frame(truth, images: torch.Tensor, change: Similarity) -> Predictions:
    """Exact predictions expressed in another world frame and scale: x' = s R x + T."""
    rotation, scale = change.rotation, change.scale
    camera_rotation = truth.extrinsic[:, :, :3] @ rotation.T
    camera_translation = scale * truth.extrinsic[:, :, 3] - camera_rotation @ change.translation
    num_views, _, height, width = images.shape
    return Predictions(
        images=images.permute(0, 2, 3, 1).numpy(),
        extrinsic=np.concatenate([camera_rotation, camera_translation[..., None]], axis=2).astype(np.float32),
        intrinsic=truth.intrinsic.astype(np.float32),
        depth=(scale * truth.depth).astype(np.float32),
        depth_conf=np.ones((num_views, height, width), np.float32),
        world_points=change.apply(truth.world_points).astype(np.float32),
        world_points_conf=np.ones((num_views, height, width), np.float32),
        instance_feat=np.zeros((num_views, height, width, 8), np.float32),
        pose_enc=np.zeros((num_views, 9), np.float32),
    )


def exact_setup(scene, config: BenchmarkConfig):
    """A predictor returning exact (re-framed) predictions and segmenters: perfect and empty."""
    views = select_views(scene.num_views, config.views)
    images, truth = prepare_views(scene, views, config.img_size, config.patch_size, config.preprocess_mode)

    def predict(batch: torch.Tensor) -> Predictions:
        assert torch.equal(batch, images)  # the runner feeds exactly the preprocessed views
        return predictions_in_other_frame(truth, images, WORLD_CHANGE)

    segmenters = {
        "exact": lambda predictions: np.where(truth.instance_ids > 0, truth.instance_ids + 100, 0),
        "nothing": lambda predictions: np.zeros_like(truth.instance_ids),
    }
    return predict, segmenters


def test_exact_predictions_in_another_frame_score_perfectly(make_scene):
    scene = make_scene(num_views=4)
    config = BenchmarkConfig(img_size=56, patch_size=14)
    predict, segmenters = exact_setup(scene, config)
    rows = run_benchmark([Path("scene_a")], lambda _: scene, predict, segmenters, config, progress=False)
    assert [row["method"] for row in rows] == ["exact", "nothing"]
    exact, nothing = rows
    assert exact["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert exact["tau_1.03"] == 1.0 and exact["delta_1.25"] == 1.0
    assert exact["chamfer"] == pytest.approx(0.0, abs=1e-5)
    assert exact["normal_consistency"] == pytest.approx(1.0, abs=1e-5)
    for key in TASK_COLUMNS["cameras"]:
        assert exact[key] == 1.0, key
    assert exact["t_miou"] == 1.0 and exact["t_sr"] == 1.0 and exact["id_consistency"] == 1.0
    assert exact["num_objects"] == 3 and exact["num_predicted"] == 3
    assert "abs_rel" not in nothing  # geometry belongs to the model's row only
    assert nothing["t_miou"] == 0.0 and nothing["t_sr"] == 0.0


def test_reports_have_every_column_and_both_rows(make_scene, tmp_path):
    scene = make_scene(num_views=3)
    config = BenchmarkConfig(img_size=56, patch_size=14, views=2)
    predict, segmenters = exact_setup(scene, config)
    rows = run_benchmark([Path("a"), Path("b")], lambda _: scene, predict, segmenters, config, progress=False)
    write_reports(rows, config.tasks, {"model": "exact"}, tmp_path)
    with open(tmp_path / "per_scene.csv") as handle:
        table = list(csv.DictReader(handle))
    expected = ["scene", "method", "num_views", *[c for t in config.tasks for c in TASK_COLUMNS[t]], "seconds"]
    assert list(table[0]) == expected
    assert [(row["scene"], row["method"]) for row in table] == [
        ("a", "exact"), ("a", "nothing"), ("b", "exact"), ("b", "nothing")
    ]  # fmt: skip
    assert table[0]["num_views"] == "2" and float(table[0]["t_miou"]) == 1.0
    assert table[1]["abs_rel"] == ""  # not applicable to the baseline row
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["model"] == "exact"
    assert summary["metrics"]["exact"]["auc@30"] == 1.0
    assert summary["metrics"]["nothing"]["abs_rel"] is None
    # every scene scores 1: an interval of one point; the baseline has no AbsRel to bound
    assert summary["intervals_95"]["exact"]["auc@30"] == [1.0, 1.0]
    assert summary["intervals_95"]["nothing"]["abs_rel"] is None
    table_md = (tmp_path / "results.md").read_text()
    assert "| exact | 0.00 | 100.00 | 100.00 |" in table_md  # AbsRel, delta, tau in percent
    assert "| nothing | - |" in table_md
    assert "| exact | 0.00 - 0.00 | 100.00 - 100.00 | 100.00 - 100.00 |" in table_md
    assert "95 % intervals of the means above" in table_md


def test_intervals_bound_the_mean_of_scenes_that_differ():
    rows = [{"scene": f"s{i}", "method": "m", "t_miou": value} for i, value in enumerate([0.2, 0.4, 0.6, 0.8])]
    low, high = interval_summary(rows, ["t_miou"])["m"]["t_miou"]
    assert 0.2 <= low < 0.5 < high <= 0.8  # the mean, 0.5, inside; never beyond the scenes' range
    rows.append({"scene": "s4", "method": "m", "t_miou": None})  # undefined: left out, as in the mean
    assert interval_summary(rows, ["t_miou"])["m"]["t_miou"] == [low, high]


def test_task_selection_limits_columns_and_rows(make_scene):
    scene = make_scene()
    config = BenchmarkConfig(tasks=("depth",), img_size=56, patch_size=14)
    predict, segmenters = exact_setup(scene, config)
    rows = run_benchmark([Path("a")], lambda _: scene, predict, segmenters, config, progress=False)
    assert len(rows) == 1  # no instance task: the baseline has nothing to report
    assert set(TASK_COLUMNS["depth"]) <= set(rows[0]) and "chamfer" not in rows[0] and "t_miou" not in rows[0]


def test_config_rejects_unknown_values():
    with pytest.raises(ConfigError, match="depht"):
        BenchmarkConfig(tasks=("depht",))
    with pytest.raises(ConfigError, match="point_alignment"):
        BenchmarkConfig(point_alignment="affine")
    with pytest.raises(ConfigError, match="views"):
        BenchmarkConfig(views=0)


def test_select_views_spreads_evenly():
    assert select_views(10, None).tolist() == list(range(10))
    assert select_views(10, 4).tolist() == [0, 3, 6, 9]
    assert select_views(3, 8).tolist() == [0, 1, 2]


def test_ground_truth_on_the_network_grid_keeps_geometry(make_scene):
    scene = make_scene(num_views=2, height=48, width=64)
    scene.depth[:] = 3.0  # fronto-parallel planes: every resampling keeps the surface exactly
    _, truth = prepare_views(scene, np.arange(2), img_size=56, patch_size=14, mode="crop")
    assert truth.depth.shape == (2, 42, 56) and truth.valid.all()
    camera_points = truth.world_points @ truth.extrinsic[:, None, :, :3].transpose(0, 1, 3, 2)
    camera_points += truth.extrinsic[:, None, None, :, 3]
    np.testing.assert_allclose(camera_points[..., 2], 3.0, atol=1e-9)
    # The network's corner pixel sees the original ray through its centre (intrinsics mapped exactly).
    original = depth_to_world_points(
        torch.full((1, 48, 64), 3.0, dtype=torch.float64),
        torch.from_numpy(scene.intrinsic[:1].astype(np.float64)),
        torch.from_numpy(scene.extrinsic[:1].astype(np.float64)),
    )[0].numpy()
    scale = 56 / 64
    corner = np.array([(0 + 0.5) / scale - 0.5, (0 + 0.5 + (48 * scale - 42) / 2) / scale - 0.5])  # (u, v)
    step = original[0, 1] - original[0, 0]
    expected = original[0, 0] + corner[0] * step + corner[1] * (original[1, 0] - original[0, 0])
    np.testing.assert_allclose(truth.world_points[0, 0, 0], expected, atol=1e-9)


def test_ground_truth_padding_is_invalid_and_unlabelled(make_scene):
    scene = make_scene(num_views=1, height=32, width=64)
    scene.instance_ids[:] = 1
    _, truth = prepare_views(scene, np.arange(1), img_size=56, patch_size=14, mode="pad")
    assert truth.depth.shape == (1, 56, 56)
    padded_rows = ~truth.valid[0].any(1)
    assert padded_rows.sum() == 56 - 28  # the 64 x 32 image fills 56 x 28 of the canvas
    assert (truth.instance_ids[0][padded_rows] == 0).all() and (truth.instance_ids[0][~padded_rows] == 1).all()
