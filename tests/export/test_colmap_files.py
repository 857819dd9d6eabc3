"""The numpy COLMAP writer against pycolmap writing the same model (the way iggt used to write it)."""

import numpy as np
import pycolmap
import pytest
from scipy.spatial.transform import Rotation

from iggt.export import ExportOptions
from iggt.export.colmap import matrix_to_quaternion, sparse_model
from iggt.export.colmap_files import SparseModel, write_sparse_model
from iggt.export.naming import view_names

SAME_BYTES = ("cameras", "points3D", "rigs")
"""Files holding no rotation: byte-equal to pycolmap's. Rotations are compared within a few ulps."""


def pycolmap_reconstruction(model: SparseModel, extrinsic: np.ndarray) -> pycolmap.Reconstruction:
    """``model`` built point by point with pycolmap, from the same (S, 3, 4) cam_from_world poses."""
    reconstruction = pycolmap.Reconstruction()
    starts = model.view_starts()
    for view, name in enumerate(model.names):
        camera = pycolmap.Camera(
            camera_id=view + 1, model="PINHOLE", width=model.width, height=model.height, params=model.params[view]
        )
        reconstruction.add_camera_with_trivial_rig(camera)
        keypoints = model.keypoints[starts[view] : starts[view + 1]]
        image = pycolmap.Image(name=name, keypoints=keypoints, camera_id=view + 1, image_id=view + 1)
        reconstruction.add_image_with_trivial_frame(image, pycolmap.Rigid3d(extrinsic[view]))
    for index, (view, xyz, rgb) in enumerate(zip(model.keypoint_view, model.xyz, model.rgb, strict=True)):
        track = pycolmap.Track([pycolmap.TrackElement(int(view) + 1, int(index - starts[view]))])
        reconstruction.add_point3D(xyz, track, rgb)
    return reconstruction


def assert_same_models(ours: pycolmap.Reconstruction, theirs: pycolmap.Reconstruction) -> None:
    assert ours.num_cameras() == theirs.num_cameras() and ours.num_points3D() == theirs.num_points3D()
    for image_id, image in theirs.images.items():
        mine = ours.image(image_id)
        assert (mine.name, mine.camera_id) == (image.name, image.camera_id)
        np.testing.assert_allclose(mine.cam_from_world().matrix(), image.cam_from_world().matrix(), atol=1e-15)
        assert np.array_equal([p.xy for p in mine.points2D], [p.xy for p in image.points2D])
        assert [p.point3D_id for p in mine.points2D] == [p.point3D_id for p in image.points2D]
        assert np.array_equal(ours.camera(image.camera_id).params, theirs.camera(image.camera_id).params)
    for point_id, point in theirs.points3D.items():
        mine = ours.point3D(point_id)
        assert np.array_equal(mine.xyz, point.xyz) and np.array_equal(mine.color, point.color)
        assert [(e.image_id, e.point2D_idx) for e in mine.track.elements] == [
            (e.image_id, e.point2D_idx) for e in point.track.elements
        ]


@pytest.mark.parametrize("points", [300, 0])
def test_written_model_equals_pycolmaps_in_binary_and_text(scene, tmp_path, points):
    predictions, instances = scene
    names = view_names(predictions.num_views, "view")
    model = sparse_model(predictions, instances, names, ExportOptions(max_colmap_points=points))
    assert len(model.xyz) == points
    theirs = pycolmap_reconstruction(model, predictions.extrinsic.astype(np.float64))
    ours_dir, theirs_dir = tmp_path / "ours", tmp_path / "theirs"
    ours_dir.mkdir(), theirs_dir.mkdir()
    written = write_sparse_model(model, ours_dir)
    theirs.write(theirs_dir)
    theirs.write_text(theirs_dir)
    assert sorted(path.name for path in written) == sorted(path.name for path in theirs_dir.iterdir())
    for name in SAME_BYTES:
        for suffix in (".bin", ".txt"):
            assert (ours_dir / f"{name}{suffix}").read_bytes() == (theirs_dir / f"{name}{suffix}").read_bytes()
    from_text = pycolmap.Reconstruction()
    from_text.read_text(ours_dir)
    for ours in (pycolmap.Reconstruction(ours_dir), from_text):
        assert_same_models(ours, theirs)


def test_quaternions_are_colmaps_on_every_branch():
    """Rotations with a positive trace, and ones whose largest diagonal entry is x, y or z."""
    rng = np.random.default_rng(0)
    half_turns = [Rotation.from_rotvec(np.pi * 0.99 * axis).as_matrix() for axis in np.eye(3)]
    rotations = [*Rotation.random(20, random_state=1).as_matrix(), *half_turns]
    traces = [np.trace(rotation) for rotation in rotations]
    assert min(traces) < 0 < max(traces)
    for rotation in rotations:
        rotation = rotation.astype(np.float32).astype(np.float64)  # as the predicted extrinsics are
        pose = np.concatenate([rotation, rng.normal(size=(3, 1))], 1)
        x, y, z, w = pycolmap.Rigid3d(pose).rotation.quat
        np.testing.assert_allclose(matrix_to_quaternion(rotation), [w, x, y, z], rtol=0, atol=4e-16)
