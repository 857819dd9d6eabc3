"""Each exporter's files, re-read with an independent library and checked against the inputs."""

import json

import numpy as np
import pycolmap
import pytest
import trimesh
from export_scene import HEIGHT, VIEWS, WIDTH, kept_pixels, make_scene
from PIL import Image
from plyfile import PlyData

from iggt.errors import InputError
from iggt.export import (
    ExportOptions,
    export_all,
    export_colmap,
    export_glb,
    export_json,
    export_masks,
    export_npz,
    export_ply,
)
from iggt.export.colours import instance_colours
from iggt.export.glb import pca_colours
from iggt.export.reconstruction import write_original_resolution
from iggt.instances import lift_instances
from iggt.structures import Instances, Predictions

FLIP_YZ = np.array([1.0, -1.0, -1.0])


def expected_uint8(images: np.ndarray) -> np.ndarray:
    return np.round(np.clip(images, 0, 1) * 255).astype(np.uint8)


def test_ply_holds_the_confident_points_with_colours_ids_and_confidence(scene, tmp_path):
    predictions, instances = scene
    (path,) = export_ply(predictions, instances, tmp_path, ExportOptions(confidence_quantile=0.3))
    vertex = PlyData.read(str(path))["vertex"]
    names = [p.name for p in vertex.properties]
    assert names == ["x", "y", "z", "red", "green", "blue", "instance_id", "confidence"]
    kept = kept_pixels(predictions, 0.3)
    assert vertex.count == len(kept)
    xyz = np.stack([vertex["x"], vertex["y"], vertex["z"]], 1)
    rgb = np.stack([vertex["red"], vertex["green"], vertex["blue"]], 1)
    assert np.allclose(xyz, predictions.world_points.reshape(-1, 3)[kept])
    assert np.array_equal(rgb, expected_uint8(predictions.images.reshape(-1, 3)[kept]))
    assert np.array_equal(vertex["instance_id"], instances.labels.reshape(-1)[kept])
    assert np.allclose(vertex["confidence"], predictions.world_points_conf.reshape(-1)[kept])


def test_ply_subsampling_keeps_rows_intact(scene, tmp_path):
    predictions, instances = scene
    (path,) = export_ply(predictions, instances, tmp_path, ExportOptions(max_points=50))
    vertex = PlyData.read(str(path))["vertex"]
    assert vertex.count == 50
    label_of = {
        tuple(np.round(p, 4)): i
        for p, i in zip(predictions.world_points.reshape(-1, 3), instances.labels.reshape(-1), strict=True)
    }
    for x, y, z, instance_id in zip(vertex["x"], vertex["y"], vertex["z"], vertex["instance_id"], strict=True):
        assert label_of[tuple(np.round([x, y, z], 4))] == instance_id


def test_glb_scenes_have_points_in_gltf_frame_with_each_colouring_and_frusta(scene, tmp_path):
    predictions, instances = scene
    paths = export_glb(predictions, instances, tmp_path)
    assert [p.name for p in paths] == ["scene_rgb.glb", "scene_instances.glb", "scene_features.glb"]
    kept = kept_pixels(predictions, ExportOptions().confidence_quantile)
    expected_colours = {
        "rgb": expected_uint8(predictions.images.reshape(-1, 3)[kept]),
        "instances": instance_colours(instances.labels.reshape(-1)[kept]),
    }
    for path in paths:
        loaded = trimesh.load(path)
        assert sorted(loaded.geometry) == ["camera_000", "camera_001", "camera_002", "points"]
        points = loaded.geometry["points"]
        assert np.allclose(points.vertices, predictions.world_points.reshape(-1, 3)[kept] * FLIP_YZ, atol=1e-5)
        kind = path.stem.removeprefix("scene_")
        if kind in expected_colours:
            assert np.array_equal(points.colors[:, :3], expected_colours[kind])
        else:  # PCA of random features: varied colours
            assert len(np.unique(points.colors[:, :3], axis=0)) > 100


def test_glb_frusta_sit_at_the_cameras_and_look_along_their_axis(scene, tmp_path):
    predictions, instances = scene
    depth = 0.5
    (path, *_) = export_glb(predictions, instances, tmp_path, ExportOptions(frustum_depth=depth))
    loaded = trimesh.load(path)
    # glTF convention: the first camera (identity pose) looks along -z
    assert loaded.geometry["camera_000"].vertices[:, 2].max() < 0.02
    assert loaded.geometry["camera_000"].vertices[:, 2].min() < -0.45
    for view in range(VIEWS):
        vertices = loaded.geometry[f"camera_{view:03d}"].vertices * FLIP_YZ  # back to OpenCV world
        rotation, translation = predictions.extrinsic[view, :, :3], predictions.extrinsic[view, :, 3]
        in_camera = vertices @ rotation.T + translation
        assert np.abs(in_camera[:, 2]).min() < 0.02  # edges start at the camera centre
        assert abs(in_camera[:, 2].max() - depth) < 0.02  # and end on the image plane
        far = in_camera[in_camera[:, 2] > depth / 2]
        u = far[:, 0] / far[:, 2] * predictions.intrinsic[view, 0, 0] + predictions.intrinsic[view, 0, 2]
        v = far[:, 1] / far[:, 2] * predictions.intrinsic[view, 1, 1] + predictions.intrinsic[view, 1, 2]
        assert u.min() == pytest.approx(0, abs=1.0) and u.max() == pytest.approx(WIDTH - 1, abs=1.0)
        assert v.min() == pytest.approx(0, abs=1.0) and v.max() == pytest.approx(HEIGHT - 1, abs=1.0)


def test_pca_colours_separate_feature_groups():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 8))
    groups = np.repeat(np.arange(6), 100)
    colours = pca_colours(centres[groups] + 0.01 * rng.normal(size=(600, 8)), seed=0).astype(int)
    means = np.stack([colours[groups == g].mean(0) for g in range(6)])
    spread = max(np.abs(colours[groups == g] - means[g]).max() for g in range(6))
    gaps = [np.abs(means[a] - means[b]).max() for a in range(6) for b in range(a)]
    assert spread < 10 and min(gaps) > 5 * spread


def test_mask_pngs_hold_exact_ids_and_overlays_tint_instances(scene, tmp_path):
    predictions, instances = scene
    paths = export_masks(predictions, instances, tmp_path, ExportOptions(overlay_alpha=0.5))
    assert len(paths) == 2 * VIEWS
    for view in range(VIEWS):
        with Image.open(tmp_path / "masks" / f"instance_ids_{view:03d}.png") as image:
            assert image.mode == "I;16"
            ids = np.array(image)
        assert ids.dtype == np.uint16 and np.array_equal(ids, instances.labels[view])
        overlay = np.array(Image.open(tmp_path / "masks" / f"overlay_{view:03d}.png"))
        original = expected_uint8(predictions.images[view])
        background = instances.labels[view] == 0
        assert overlay.shape == (HEIGHT, WIDTH, 3)
        assert np.array_equal(overlay[background], original[background])
        tint = instance_colours(instances.labels[view][~background]).astype(float)
        blend = 0.5 * predictions.images[view][~background] * 255 + 0.5 * tint
        assert np.abs(overlay[~background] - blend).max() <= 1.0


def test_masks_reject_ids_beyond_16_bits(scene, tmp_path):
    predictions, instances = scene
    labels = instances.labels.copy()
    labels[0, 0, 0] = 70000
    big = lift_instances(labels, predictions.world_points, predictions.world_points_conf, predictions.instance_feat)
    with pytest.raises(InputError, match="16-bit"):
        export_masks(predictions, big, tmp_path)


def test_colmap_model_opens_in_pycolmap_with_our_cameras_and_points(scene, tmp_path):
    predictions, instances = scene
    files = export_colmap(predictions, instances, tmp_path, ExportOptions(max_colmap_points=200))
    sparse = tmp_path / "colmap" / "sparse" / "0"
    for name in ("cameras", "images", "points3D"):
        assert sparse / f"{name}.bin" in files and sparse / f"{name}.txt" in files
    for source in (sparse, None):
        reconstruction = pycolmap.Reconstruction(sparse) if source else pycolmap.Reconstruction()
        if source is None:
            reconstruction.read_text(sparse)
        assert reconstruction.num_cameras() == VIEWS and reconstruction.num_images() == VIEWS
        assert reconstruction.num_points3D() == 200
    for view in range(VIEWS):
        image = reconstruction.image(view + 1)
        camera = reconstruction.camera(image.camera_id)
        assert image.name == f"view_{view:03d}.png"
        assert np.allclose(image.cam_from_world().matrix(), predictions.extrinsic[view], atol=1e-5)
        fx, fy, cx, cy = predictions.intrinsic[view][[0, 1, 0, 1], [0, 1, 2, 2]]
        assert camera.model == pycolmap.CameraModelId.PINHOLE
        assert (camera.width, camera.height) == (WIDTH, HEIGHT)
        assert np.allclose(camera.params, [fx, fy, cx + 0.5, cy + 0.5], atol=1e-5)
        with Image.open(tmp_path / "colmap" / "images" / image.name) as png:
            assert np.array_equal(np.array(png), expected_uint8(predictions.images[view]))


def test_colmap_points_project_onto_the_centre_of_their_pixel(scene, tmp_path):
    predictions, instances = scene
    export_colmap(predictions, instances, tmp_path, ExportOptions(max_colmap_points=300))
    reconstruction = pycolmap.Reconstruction(tmp_path / "colmap" / "sparse" / "0")
    checked = 0
    for point in reconstruction.points3D.values():
        (element,) = point.track.elements
        image = reconstruction.image(element.image_id)
        observed = image.points2D[element.point2D_idx].xy
        projected = image.camera.img_from_cam(image.cam_from_world() * point.xyz)
        assert np.allclose(projected, observed, atol=1e-3)
        column, row = (observed - 0.5).round().astype(int)
        assert np.allclose(point.xyz, predictions.world_points[element.image_id - 1, row, column], atol=1e-5)
        checked += 1
    assert checked == 300


def test_instances_json_matches_the_table_and_writes_null_for_nan(scene, tmp_path):
    predictions, instances = scene
    (path,) = export_json(predictions, instances, tmp_path)
    table = json.loads(path.read_text())
    assert [entry["id"] for entry in table["instances"]] == instances.ids.tolist()
    assert [entry["pixel_counts"] for entry in table["instances"]] == instances.pixel_counts.tolist()
    assert table["num_views"] == VIEWS and table["image_size"] == [HEIGHT, WIDTH]
    no_points = lift_instances(
        instances.labels,
        np.full(predictions.world_points.shape, np.nan),
        predictions.world_points_conf,
        predictions.instance_feat,
    )
    (path,) = export_json(predictions, no_points, tmp_path / "nan")
    first = json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"{name} in JSON"))["instances"][0]
    assert first["centroid"] == [None, None, None]


def test_npz_round_trips_predictions_and_instances(scene, tmp_path):
    predictions, instances = scene
    predictions_path, instances_path = export_npz(predictions, instances, tmp_path)
    loaded_predictions, loaded_instances = Predictions.load(predictions_path), Instances.load(instances_path)
    with np.load(predictions_path) as raw:
        assert set(raw.files) == {
            "images", "extrinsic", "intrinsic", "depth", "depth_conf", "world_points",
            "world_points_conf", "instance_feat", "pose_enc",
        }  # fmt: skip
    assert np.array_equal(loaded_predictions.world_points, predictions.world_points, equal_nan=True)
    assert np.array_equal(loaded_instances.labels, instances.labels)
    assert np.array_equal(loaded_instances.pixel_counts, instances.pixel_counts)


def test_exporters_reject_labels_of_other_predictions(tmp_path):
    predictions, _ = make_scene()
    small = lift_instances(
        np.ones((1, 2, 2), np.int32),
        np.zeros((1, 2, 2, 3)),
        np.ones((1, 2, 2)),
        np.ones((1, 2, 2, 6), np.float32),
    )
    for exporter in (export_npz, export_ply, export_glb, export_masks, export_colmap, export_json):
        with pytest.raises(InputError, match="instances.labels has shape"):
            exporter(predictions, small, tmp_path)


def test_export_all_refuses_labels_of_other_predictions_before_writing(tmp_path):
    predictions, _ = make_scene()
    small = lift_instances(
        np.ones((1, 2, 2), np.int32), np.zeros((1, 2, 2, 3)), np.ones((1, 2, 2)), np.ones((1, 2, 2, 6), np.float32)
    )
    with pytest.raises(InputError, match="instances.labels has shape"):
        export_all(predictions, small, tmp_path / "result")
    assert not (tmp_path / "result").exists()


def test_original_resolution_files_keep_each_view_at_its_size_and_refuse_ids_over_16_bits(tmp_path):
    labels = [np.array([[0, 3], [65535, 1]], np.int32), np.array([[2], [0], [7]], np.int32)]
    depth = [np.full((2, 2), 1.5), np.arange(3.0).reshape(3, 1)]
    written = write_original_resolution(labels, depth, tmp_path)
    assert [path.name for path in written] == [
        "instance_ids_000.png", "depth_000.npy", "instance_ids_001.png", "depth_001.npy",
    ]  # fmt: skip
    for view in range(2):
        png = Image.open(written[2 * view])
        assert png.mode == "I;16" and np.array_equal(np.array(png), labels[view])
        stored = np.load(written[2 * view + 1])
        assert stored.dtype == np.float32 and np.array_equal(stored, depth[view])
    with pytest.raises(InputError, match=r"instance IDs must lie in \[0, 65535\]"):
        write_original_resolution([np.array([[70000]], np.int32)], [np.zeros((1, 1))], tmp_path / "wide")
    assert not (tmp_path / "wide").exists()
