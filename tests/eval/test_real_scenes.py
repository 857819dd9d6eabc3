"""Real-photo scenes from installed packages: the geometry must explain the photographs."""

import io
import re
import tarfile

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from iggt.errors import InputError
from iggt.eval.real_scenes import (
    SDIST_PAIRS,
    disparity_to_depth,
    middlebury_motorcycle,
    sdist_stereo_pair,
    warp_depth_to_right,
)
from iggt.geometry import depth_to_world_points, project_points


def test_disparity_to_depth_follows_middlebury_and_marks_unknown_pixels():
    disparity = np.array([[10.0, np.inf, np.nan, -40.0]], np.float32)
    depth = disparity_to_depth(disparity, focal=1000.0, baseline=0.2, doffs=30.0)
    np.testing.assert_allclose(depth, [[1000.0 * 0.2 / 40.0, 0, 0, 0]], rtol=1e-6)


def test_right_depth_keeps_the_nearest_surface_where_two_left_pixels_land_together():
    disparity = np.array([[0.0, 2.0, 1.0, 0.0]], np.float32)
    depth = np.array([[5.0, 2.0, 3.0, 0.0]], np.float32)  # pixel 3 has no ground truth
    # x - d: pixel 0 -> 0, pixel 1 -> -1 (outside), pixel 2 -> 1; nothing lands on 2 or 3.
    np.testing.assert_array_equal(warp_depth_to_right(disparity, depth), [[5.0, 3.0, 0.0, 0.0]])
    disparity = np.array([[0.0, 1.0]], np.float32)
    depth = np.array([[4.0, 2.5]], np.float32)  # both land on right pixel 0: the nearer wins
    np.testing.assert_array_equal(warp_depth_to_right(disparity, depth), [[2.5, 0.0]])


def _reprojection_error(scene, source: int, target: int, extrinsic: np.ndarray) -> float:
    """Mean colour difference of the source view's pixels with GT depth and where they land in the target."""
    depth = torch.from_numpy(scene.depth[source]).double()
    intrinsic = torch.from_numpy(scene.intrinsic).double()
    extrinsic = torch.from_numpy(extrinsic).double()
    points = depth_to_world_points(depth, intrinsic[source], extrinsic[source])
    valid = depth > 0
    uv, z = project_points(points[valid], intrinsic[target], extrinsic[target])
    column, row = uv.round().long().unbind(-1)
    height, width = depth.shape
    inside = (z > 0) & (column >= 0) & (column < width) & (row >= 0) & (row < height)
    images = torch.from_numpy(scene.images).double()
    seen = images[source][valid][inside]
    landed = images[target][row[inside], column[inside]]
    return float((seen - landed).abs().mean())


def test_motorcycle_depth_and_cameras_map_each_photo_onto_the_other():
    scene = middlebury_motorcycle()
    assert scene.images.shape == (2, 500, 741, 3) and scene.frame_names == ["left", "right"]
    assert (scene.depth[0] > 0).mean() > 0.9 and (scene.depth[1] > 0).mean() > 0.8
    assert 1.0 < np.median(scene.depth[0][scene.depth[0] > 0]) < 5.0  # metres: a motorcycle in a studio
    true = _reprojection_error(scene, 0, 1, scene.extrinsic)
    no_baseline = scene.extrinsic.copy()
    no_baseline[1, :, 3] = 0
    mirrored = scene.extrinsic.copy()
    mirrored[1, 0, 3] *= -1  # the right camera on the wrong side
    assert true < 0.4 * _reprojection_error(scene, 0, 1, no_baseline)
    assert true < 0.4 * _reprojection_error(scene, 0, 1, mirrored)
    assert _reprojection_error(scene, 1, 0, scene.extrinsic) < 0.4 * _reprojection_error(scene, 1, 0, mirrored)
    scene.intrinsic[1, 0, 2] -= 31.086  # the right principal point without Middlebury's doffs
    assert true < 0.4 * _reprojection_error(scene, 0, 1, scene.extrinsic)


def _write_sdist(folder, name: str, disparity_right: bool, shift: int = 5):
    """A stand-in for one SDIST_PAIRS archive: a textured pair whose right view is the left one
    moved ``shift`` pixels to the left (constant disparity), under the release's member names."""
    pair = SDIST_PAIRS[name]
    rng = np.random.default_rng(0)
    left = np.kron(rng.integers(0, 256, (12, 16, 3)), np.ones((4, 4, 1))).astype(np.uint8)  # 48 x 64
    right = rng.integers(0, 256, left.shape).astype(np.uint8)
    right[:, :-shift] = left[:, shift:]
    disparity = np.full(left.shape[:2], float(shift), np.float32)
    disparity[:, :shift] = 0  # seen by the left camera only: unknown in the ground truth
    members = {pair.left: left, pair.right: right, pair.disparity_left: disparity}
    if disparity_right:
        members[pair.disparity_right] = np.where(np.arange(64) < 64 - shift, float(shift), 0).astype(np.float32) * (
            np.ones((48, 1), np.float32)
        )
    path = folder / pair.archive
    with tarfile.open(path, "w:gz") as archive:
        for member, array in members.items():
            buffer = io.BytesIO()
            if member.endswith(".tif"):
                photometric = "rgb" if array.ndim == 3 else "minisblack"
                tifffile.imwrite(buffer, array.astype(np.float32), photometric=photometric)
            elif member.endswith(".png"):
                Image.fromarray(array.astype(np.uint8)).save(buffer, format="PNG")
            else:
                Image.fromarray(array).save(buffer, format="JPEG", quality=100, subsampling=0)
            info = tarfile.TarInfo(f"{pair.folder}/{member}")
            info.size = buffer.getbuffer().nbytes
            buffer.seek(0)
            archive.addfile(info, buffer)
    return path


@pytest.mark.parametrize(("name", "disparity_right"), [("middlebury-aloe", False), ("middlebury-cones", True)])
def test_an_uncalibrated_pair_from_an_sdist_maps_each_photo_onto_the_other(tmp_path, name, disparity_right):
    _write_sdist(tmp_path, name, disparity_right)
    scene = sdist_stereo_pair(name, tmp_path)
    assert scene.images.shape == (2, 48, 64, 3) and scene.metadata["calibrated"] is False
    # depth = focal / disparity in units of the baseline, focal assumed to be the width
    known = scene.depth[0] > 0
    np.testing.assert_allclose(scene.depth[0][known], 64 / 5, rtol=1e-6)
    assert not known[:, :5].any() and known[:, 5:].all()
    assert (scene.depth[1][:, :59] > 0).all() and not (scene.depth[1][:, 59:] > 0).any()
    true = _reprojection_error(scene, 0, 1, scene.extrinsic)
    mirrored = scene.extrinsic.copy()
    mirrored[1, 0, 3] *= -1
    assert true < 2.0  # JPEG at quality 100 for Aloe's photos, exact for Cones' TIFFs
    assert _reprojection_error(scene, 0, 1, mirrored) > 20 * max(true, 0.5)
    assert _reprojection_error(scene, 1, 0, scene.extrinsic) < 2.0


def test_a_missing_or_wrong_sdist_is_one_line_that_says_how_to_fetch_it(tmp_path):
    with pytest.raises(
        InputError, match=re.escape(f"fetch the source archives with python -m iggt.eval.sdist_fetch {tmp_path}")
    ):
        sdist_stereo_pair("middlebury-cones", tmp_path)
    with tarfile.open(tmp_path / SDIST_PAIRS["middlebury-cones"].archive, "w:gz"):
        pass  # another release: none of the members
    with pytest.raises(InputError, match="has no pandora-1.9.0/tests/pandora/left_rgb.tif"):
        sdist_stereo_pair("middlebury-cones", tmp_path)
    (tmp_path / SDIST_PAIRS["middlebury-aloe"].archive).write_text("not an archive")
    with pytest.raises(InputError, match="not a readable source archive"):
        sdist_stereo_pair("middlebury-aloe", tmp_path)
    with pytest.raises(InputError, match="unknown stereo pair"):
        sdist_stereo_pair("kitti", tmp_path)
