"""Instance tracking on an engine-rendered walk, against the renderer's ground truth."""

import json

import numpy as np
import pytest
from PIL import Image
from plyfile import PlyData
from scipy.spatial.transform import Rotation
from synth_result import OCCLUDED

from iggt.cli.main import main
from iggt.errors import ConfigError, InputError
from iggt.tasks.result import load_result
from iggt.tasks.tracking import TrackingConfig, ViewState, instance_at_pixel, oriented_box, track_instance

LARGE_SURFACES = {"wall", "floor", "ceiling"}
"""Seen only in part, so parts never observed can lie in a frame without any point to project there."""


def ground_truth_state(gt_pixels: int, alone_pixels: int) -> ViewState:
    """Visible: it has pixels; occluded: it has pixels when rendered alone (inside the frustum), not
    in the full render; out of frame: not even alone."""
    if gt_pixels > 0:
        return ViewState.VISIBLE
    return ViewState.OCCLUDED if alone_pixels > 0 else ViewState.OUT_OF_FRAME


def test_states_match_the_renderers_visibility(synth_scene):
    result = load_result(synth_scene.folder)
    config = TrackingConfig()
    compared, seen_states = 0, set()
    for row, instance_id in enumerate(result.instances.ids.tolist()):
        if synth_scene.class_names[instance_id] in LARGE_SURFACES:
            continue
        track = track_instance(result, instance_id, config)
        gt_pixels, alone = result.instances.pixel_counts[row], synth_scene.alone_pixels[instance_id]
        for view, state in enumerate(track.states()):
            # Below the tracker's stated resolution (min_points) a handful of pixels is no evidence either way.
            few = config.min_points
            if 0 < gt_pixels[view] < few or (gt_pixels[view] == 0 and 0 < alone[view] < few):
                continue
            expected = ground_truth_state(gt_pixels[view], alone[view])
            assert state == expected, (instance_id, view, gt_pixels[view], alone[view])
            compared += 1
            seen_states.add(state)
    assert compared > 50
    assert seen_states == set(ViewState)


def test_the_occluded_chair_keeps_its_id_when_it_re_enters(synth_scene):
    instance_id, hidden_view = OCCLUDED
    result = load_result(synth_scene.folder)
    track = track_instance(result, instance_id)
    assert synth_scene.alone_pixels[instance_id][hidden_view] > 0  # inside the frustum...
    assert track.views[hidden_view].mask_pixels == 0  # ...with no pixel: hidden
    assert track.states() == [ViewState.OCCLUDED] + [ViewState.OUT_OF_FRAME] * 2 + [ViewState.VISIBLE] * 5
    for view in range(3, 8):  # after leaving the frame, the same ID's pixels are the chair again
        assert track.masks[view].sum() == result.instances.pixel_counts[result.check_instance(instance_id), view] > 0


def test_the_depth_tolerance_decides_occlusion(synth_scene):
    """With a tolerance so large that any predicted depth passes, nothing in frame can be occluded."""
    result = load_result(synth_scene.folder)
    instance_id, hidden_view = OCCLUDED
    lenient = track_instance(result, instance_id, TrackingConfig(depth_tolerance=0.99))
    assert lenient.views[hidden_view].state == ViewState.VISIBLE


def test_oriented_box_recovers_a_rotated_box_despite_outliers():
    rng = np.random.default_rng(0)
    rotation = Rotation.from_euler("xyz", [20, -35, 50], degrees=True).as_matrix()
    half = np.array([2.0, 1.0, 0.4])
    local = rng.uniform(-1, 1, (20000, 3)) * half
    points = local @ rotation.T + [1.0, -2.0, 3.0]
    points[:100] += rng.normal(scale=50, size=(100, 3))  # 0.5 % wild outliers
    box, centroid = oriented_box(points, quantile=0.02)
    # uniform on [-h, h]: the 2 % / 98 % quantiles sit at 0.96 h; 20000 samples put them within ~1 %
    np.testing.assert_allclose(box.half_extents, 0.96 * half, rtol=0.03)
    np.testing.assert_allclose(np.abs(np.sum(box.axes * rotation.T, 1)), 1, atol=0.01)
    np.testing.assert_allclose(box.centre, [1.0, -2.0, 3.0], atol=0.03)
    np.testing.assert_allclose(centroid, [1.0, -2.0, 3.0], atol=0.03)
    assert np.isclose(np.linalg.det(box.axes), 1)
    assert box.corners().shape == (8, 3)


def test_instance_at_pixel_and_its_errors(synth_scene):
    result = load_result(synth_scene.folder)
    rows, columns = np.nonzero(result.instances.labels[3] == OCCLUDED[0])
    assert instance_at_pixel(result, 3, int(columns[0]), int(rows[0])) == OCCLUDED[0]
    with pytest.raises(InputError, match=r"pixel \(64, 0\) is outside view 3, which is 64x48"):
        instance_at_pixel(result, 3, 64, 0)
    with pytest.raises(InputError, match="view 8 is out of range; the result has views 0..7"):
        instance_at_pixel(result, 8, 0, 0)
    with pytest.raises(InputError, match="no instance with ID 999"):
        track_instance(result, 999)
    result.instances.labels[3, 0, 0] = 0  # a pixel of no instance (sky, or unclustered)
    with pytest.raises(InputError, match=r"pixel \(0, 0\) of view 3 belongs to no instance"):
        instance_at_pixel(result, 3, 0, 0)
    with pytest.raises(ConfigError, match="TrackingConfig.depth_tolerance=1.5"):
        TrackingConfig(depth_tolerance=1.5)


def test_cli_tracks_the_instance_under_a_pixel(synth_scene, tmp_path, capsys):
    result = load_result(synth_scene.folder)
    rows, columns = np.nonzero(result.instances.labels[3] == OCCLUDED[0])
    out = tmp_path / "track"
    argv = ["track", str(synth_scene.folder), "--view", "3", "--xy", str(columns[0]), str(rows[0]), "--out", str(out)]
    assert main(argv) == 0
    assert f"Instance {OCCLUDED[0]}: 0:occluded, 1:out_of_frame" in capsys.readouterr().out
    written = json.loads((out / "track.json").read_text())
    assert written["instance_id"] == OCCLUDED[0]
    assert [view["state"] for view in written["views"]][:4] == ["occluded", "out_of_frame", "out_of_frame", "visible"]
    for view in range(result.num_views):
        mask = np.asarray(Image.open(out / "masks" / f"mask_{view:03d}.png"))
        np.testing.assert_array_equal(mask == 255, result.instances.labels[view] == OCCLUDED[0])
    vertices = PlyData.read(str(out / "points.ply"))["vertex"]
    assert len(vertices) == written["num_points"] > 0
    assert main(argv) == 2  # the output exists: refused without --overwrite
    assert "is not empty; pass --overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--instance", "999"], "no instance with ID 999"),
        (["--view", "0"], "--view and --xy go together"),
        (["--view", "0", "--xy", "0", "99"], "pixel (0, 99) is outside view 0"),
    ],
)
def test_cli_errors_are_one_line(synth_scene, tmp_path, capsys, arguments, message):
    assert main(["track", str(synth_scene.folder), *arguments, "--out", str(tmp_path / "t")]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def test_cli_refuses_a_folder_that_is_no_result(tmp_path, capsys):
    assert main(["track", str(tmp_path), "--instance", "1"]) == 2
    assert capsys.readouterr().err == (
        f"iggt track: error: {tmp_path} has no predictions.npz or instances.npz; "
        "it must be written by `iggt reconstruct` with the npz format\n"
    )


def test_the_instances_own_pixels_make_a_view_visible(synth_scene):
    """In view 3 the chair has 10 pixels of its own; even when everything else is predicted in front
    of its other points (a depth map of 1 cm outside its mask), those pixels keep it visible."""
    result = load_result(synth_scene.folder)
    instance_id, hidden_view = OCCLUDED
    mask = result.instances.labels[3] == instance_id
    assert mask.sum() == TrackingConfig().min_points
    result.predictions.depth[3] = np.where(mask, result.predictions.depth[3], 0.01)
    strict = TrackingConfig(min_visible_fraction=0.5)  # 10 own pixels are far below half the in-frame points
    track = track_instance(result, instance_id, strict)
    assert track.views[3].points_passing < 0.5 * track.views[3].points_in_frame
    assert track.views[3].state == ViewState.VISIBLE
    assert track.views[hidden_view].state == ViewState.OCCLUDED
