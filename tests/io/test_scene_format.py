"""The scene format: exact round trips, atomic writes, and one-line errors naming the frame."""

import json

import numpy as np
import pytest
from PIL import Image

from iggt.errors import InputError, SceneFormatError
from iggt.io import scene_format
from iggt.io.scene_format import list_scenes, read_geometry, read_scene, write_scene
from iggt.synth.generate import render_scenes

ARRAYS = ("images", "depth", "intrinsic", "extrinsic", "instance_ids", "class_ids")


@pytest.fixture(scope="module")
def scene():
    return next(render_scenes([4], 3, (24, 32)))


def assert_same_scene(read, written, depth_tolerance: float = 0.0):
    for name in ARRAYS:
        got, expected = getattr(read, name), getattr(written, name)
        assert got.dtype == expected.dtype and got.shape == expected.shape, name
        if name == "depth":
            np.testing.assert_allclose(got, expected, rtol=0, atol=depth_tolerance)
        else:
            assert np.array_equal(got, expected), name
    assert read.frame_names == written.frame_names
    assert read.instances == written.instances and read.class_names == written.class_names
    assert read.metadata == written.metadata


def test_npy_depth_round_trip_is_exact(scene, tmp_path):
    write_scene(scene, tmp_path / "s", depth_encoding="npy")
    assert_same_scene(read_scene(tmp_path / "s"), scene)


def test_png16_depth_round_trip_is_within_the_stated_quantisation(scene, tmp_path):
    write_scene(scene, tmp_path / "s", depth_encoding="png16", depth_scale=1000.0)
    read = read_scene(tmp_path / "s")
    assert_same_scene(read, scene, depth_tolerance=0.5 / 1000 + 1e-6)
    assert not np.array_equal(read.depth, scene.depth)  # it really is quantised
    manifest = json.loads((tmp_path / "s" / "scene.json").read_text())
    assert manifest["depth"] == {"encoding": "png16", "scale": 1000.0}
    assert manifest["instances"]["1"] == {"class": "floor", "kind": "floor"}


def test_subsets_of_frames_and_geometry_only(scene, tmp_path):
    write_scene(scene, tmp_path / "s", depth_encoding="npy")
    subset = read_scene(tmp_path / "s", frames=["000002", "000000"])
    assert subset.frame_names == ["000002", "000000"]
    assert np.array_equal(subset.images, scene.images[[2, 0]])
    depth, intrinsic, extrinsic = read_geometry(tmp_path / "s")
    assert np.array_equal(depth, scene.depth) and np.array_equal(extrinsic, scene.extrinsic)
    with pytest.raises(SceneFormatError, match=r"frames \['000009'\] are not in scene.json"):
        read_scene(tmp_path / "s", frames=["000009"])


def test_4x4_extrinsics_from_other_tools_are_accepted(scene, tmp_path):
    folder = write_scene(scene, tmp_path / "s", depth_encoding="npy")
    homogeneous = np.eye(4)
    homogeneous[:3] = scene.extrinsic[1]
    np.savez(folder / "cam" / "000001.npz", intrinsic=scene.intrinsic[1].astype(np.float64), extrinsic=homogeneous)
    assert np.allclose(read_scene(folder).extrinsic[1], scene.extrinsic[1])


def corrupt_missing_depth(folder):
    (folder / "depth" / "000001.png").unlink()


def corrupt_depth_size(folder):
    Image.fromarray(np.zeros((10, 10), dtype=np.uint16)).save(folder / "depth" / "000002.png")


def corrupt_instance_dtype(folder):
    Image.fromarray(np.zeros((24, 32), dtype=np.uint8)).save(folder / "instance" / "000000.png")


def corrupt_unknown_instance(folder):
    Image.fromarray(np.full((24, 32), 999, dtype=np.uint16)).save(folder / "instance" / "000001.png")


def corrupt_camera_keys(folder):
    np.savez(folder / "cam" / "000000.npz", intrinsic=np.eye(3))


def corrupt_rotation(folder):
    np.savez(folder / "cam" / "000002.npz", intrinsic=np.eye(3), extrinsic=np.ones((3, 4)))


def corrupt_image_mode(folder):
    Image.fromarray(np.zeros((24, 32), dtype=np.uint8)).save(folder / "images" / "000001.png")


def corrupt_manifest(folder):
    (folder / "scene.json").write_text("{ not json")


def remove_manifest(folder):
    (folder / "scene.json").unlink()


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (corrupt_missing_depth, r"frame 000001: depth/000001.png missing"),
        (corrupt_depth_size, r"frame 000002: depth is \(10, 10\) but scene.json says image_size \(24, 32\)"),
        (corrupt_instance_dtype, r"frame 000000: instance must be a single-channel uint16 PNG"),
        (corrupt_unknown_instance, r"frame 000001: instance has IDs \[999\] missing from the scene.json table"),
        (corrupt_camera_keys, r"frame 000000: cam/000000.npz needs arrays 'intrinsic' and 'extrinsic'"),
        (corrupt_rotation, r"frame 000002: cam/000002.npz extrinsic rotation is not a rotation matrix"),
        (corrupt_image_mode, r"frame 000001: images/000001.png is L, expected RGB"),
        (corrupt_manifest, r"scene.json is malformed"),
        (remove_manifest, r"scene.json missing"),
    ],
)
def test_corrupt_scenes_raise_one_line_naming_the_problem(scene, tmp_path, corrupt, message):
    folder = write_scene(scene, tmp_path / "s")
    corrupt(folder)
    with pytest.raises(SceneFormatError, match=message) as error:
        read_scene(folder)
    assert "\n" not in str(error.value) and str(folder) in str(error.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [(np.nan, r"frame 000000: depth/000000.npy has non-finite or negative values"), (-1.0, "negative")],
)
def test_bad_float_depth_is_rejected(scene, tmp_path, values, message):
    folder = write_scene(scene, tmp_path / "s", depth_encoding="npy")
    depth = scene.depth[0].copy()
    depth[3, 4] = values
    np.save(folder / "depth" / "000000.npy", depth)
    with pytest.raises(SceneFormatError, match=message):
        read_scene(folder)


def test_float64_depth_is_rejected(scene, tmp_path):
    folder = write_scene(scene, tmp_path / "s", depth_encoding="npy")
    np.save(folder / "depth" / "000002.npy", scene.depth[2].astype(np.float64))
    with pytest.raises(SceneFormatError, match=r"frame 000002: depth/000002.npy must be float32"):
        read_scene(folder)


def test_a_failed_write_leaves_no_scene_behind(scene, tmp_path, monkeypatch):
    real_savez, calls = np.savez, []

    def savez_failing_on_the_second_frame(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise OSError("disk full")
        return real_savez(*args, **kwargs)

    monkeypatch.setattr(scene_format.np, "savez", savez_failing_on_the_second_frame)
    with pytest.raises(OSError, match="disk full"):
        write_scene(scene, tmp_path / "s")
    assert list(tmp_path.iterdir()) == []  # neither the scene nor its temporary folder
    assert list_scenes(tmp_path) == []


def test_a_failed_overwrite_keeps_the_old_scene(scene, tmp_path, monkeypatch):
    folder = write_scene(scene, tmp_path / "s", depth_encoding="npy")

    def failing_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(scene_format.np, "savez", failing_save)
    with pytest.raises(OSError):
        write_scene(scene, folder, overwrite=True)
    assert_same_scene(read_scene(folder), scene)
    assert [p.name for p in tmp_path.iterdir()] == ["s"]


def test_existing_folders_need_overwrite(scene, tmp_path):
    write_scene(scene, tmp_path / "s")
    with pytest.raises(InputError, match="already exists; pass overwrite=True"):
        write_scene(scene, tmp_path / "s")
    write_scene(scene, tmp_path / "s", depth_encoding="npy", overwrite=True)
    assert (tmp_path / "s" / "depth" / "000000.npy").is_file()
    assert not (tmp_path / "s" / "depth" / "000000.png").exists()


def test_depth_beyond_png16_range_is_refused(scene, tmp_path):
    with pytest.raises(SceneFormatError, match="does not fit png16 at depth_scale 100000.0"):
        write_scene(scene, tmp_path / "s", depth_scale=100000.0)
    assert not (tmp_path / "s").exists()


def test_list_scenes_finds_only_complete_scene_folders(scene, tmp_path):
    write_scene(scene, tmp_path / "b")
    write_scene(scene, tmp_path / "a")
    (tmp_path / "not_a_scene").mkdir()
    (tmp_path / ".a.partial-1234").mkdir()
    assert list_scenes(tmp_path) == [tmp_path / "a", tmp_path / "b"]
    assert list_scenes(tmp_path / "a") == [tmp_path / "a"]
    with pytest.raises(InputError, match="is not a folder"):
        list_scenes(tmp_path / "missing")
