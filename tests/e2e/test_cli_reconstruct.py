"""`iggt reconstruct` end to end on a scene from our engine, every output re-read independently.

The exporters' own tests check each format against hand-made predictions; here the question is
whether the command wires input -> network -> instances -> files correctly: the files must hold
what the network computed on exactly these input images, in input order.
"""

import json

import numpy as np
import pycolmap
import pytest
import torch
import trimesh
from PIL import Image
from plyfile import PlyData

from iggt.cli.main import main
from iggt.inference.preprocess import preprocess_images
from iggt.inference.runner import run_model
from iggt.io.images import read_image
from iggt.io.scene_format import write_scene
from iggt.model.iggt import IGGT
from iggt.synth.generate import render_scenes

VIEWS, HEIGHT, WIDTH = 4, 48, 64  # the tiny preset sees 42 x 56 after the crop


@pytest.fixture(scope="module")
def scene_folder(tmp_path_factory):
    """A rendered scene written in the scene format (images, depth, cameras, instances)."""
    scene = next(render_scenes([11], VIEWS, (HEIGHT, WIDTH)))
    return write_scene(scene, tmp_path_factory.mktemp("scenes") / "scene")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    model = IGGT.from_preset("tiny").eval()
    return model, model.save_pretrained(tmp_path_factory.mktemp("weights") / "tiny.safetensors")


@pytest.fixture(scope="module")
def reconstruction(scene_folder, tiny, tmp_path_factory):
    """Run the command once; the tests below read what it wrote."""
    out = tmp_path_factory.mktemp("run") / "out"
    arguments = [str(scene_folder), "--out", str(out), "--model", str(tiny[1]), "--device", "cpu", "--quiet"]
    return main(["reconstruct", *arguments]), out


def load_npz(path):
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def test_the_command_succeeds_and_writes_every_format(reconstruction):
    code, out = reconstruction
    assert code == 0
    expected = {
        "predictions.npz", "instances.npz", "points.ply", "scene_rgb.glb", "scene_instances.glb",
        "scene_features.glb", "instances.json", "reconstruction.json", "masks", "colmap",
    }  # fmt: skip
    assert expected <= {path.name for path in out.iterdir()}


def test_predictions_are_the_networks_output_on_the_input_images_in_order(reconstruction, scene_folder, tiny):
    _, out = reconstruction
    predictions = load_npz(out / "predictions.npz")
    images = [read_image(path) for path in sorted((scene_folder / "images").iterdir())]
    tensor, _ = preprocess_images(images, 56, 14, "crop")
    direct = run_model(tiny[0], tensor, device="cpu")
    np.testing.assert_allclose(predictions["images"], tensor.permute(0, 2, 3, 1).numpy(), atol=1e-6)
    np.testing.assert_allclose(predictions["depth"], direct.depth, rtol=1e-5)
    np.testing.assert_allclose(predictions["extrinsic"], direct.extrinsic, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(predictions["instance_feat"], direct.instance_feat, rtol=1e-4, atol=1e-5)


def test_masks_and_instance_table_agree_with_the_instance_labels(reconstruction):
    _, out = reconstruction
    instances = load_npz(out / "instances.npz")
    for view in range(VIEWS):
        mask = np.asarray(Image.open(out / "masks" / f"instance_ids_{view:03d}.png"))
        np.testing.assert_array_equal(mask, instances["labels"][view])
    table = json.loads((out / "instances.json").read_text())
    assert [row["id"] for row in table["instances"]] == instances["ids"].tolist()


def test_point_cloud_and_glb_hold_predicted_points(reconstruction):
    _, out = reconstruction
    points = load_npz(out / "predictions.npz")["world_points"].reshape(-1, 3)
    vertex = PlyData.read(str(out / "points.ply"))["vertex"]
    xyz = np.stack([vertex["x"], vertex["y"], vertex["z"]], 1)
    assert 0 < len(xyz) <= len(points)
    assert np.isin(xyz.view([("", xyz.dtype)] * 3), points.astype(xyz.dtype).view([("", xyz.dtype)] * 3)).all()
    scene = trimesh.load(out / "scene_instances.glb")
    names = set(scene.geometry)
    assert "points" in names and sum(name.startswith("camera_") for name in names) == VIEWS
    assert len(scene.geometry["points"].vertices) == len(xyz)


def test_colmap_model_has_the_predicted_cameras(reconstruction):
    _, out = reconstruction
    predictions = load_npz(out / "predictions.npz")
    model = pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0"))
    assert model.num_images() == VIEWS
    for view in range(VIEWS):
        image = model.images[view + 1]
        np.testing.assert_allclose(image.cam_from_world().matrix(), predictions["extrinsic"][view], atol=1e-5)
        fx, fy, cx, cy = model.cameras[image.camera_id].params
        intrinsic = predictions["intrinsic"][view]
        np.testing.assert_allclose([fx, fy, cx - 0.5, cy - 0.5], intrinsic[[0, 1, 0, 1], [0, 1, 2, 2]], rtol=1e-5)
        assert (model.cameras[image.camera_id].width, model.cameras[image.camera_id].height) == (56, 42)


def test_reconstruction_json_maps_back_to_the_input_pixels(reconstruction, scene_folder):
    _, out = reconstruction
    summary = json.loads((out / "reconstruction.json").read_text())
    predictions = load_npz(out / "predictions.npz")
    assert [view["name"] for view in summary["views"]] == [f"{i:06d}.png" for i in range(VIEWS)]
    assert summary["num_instances"] == len(load_npz(out / "instances.npz")["ids"])
    for view, entry in enumerate(summary["views"]):
        assert entry["original_size"] == [HEIGHT, WIDTH]
        scale_x, scale_y = entry["scale"]
        left, top = entry["offset"]
        network = predictions["intrinsic"][view]
        # An untrained camera head may predict a zero field of view: an infinite focal, stored as null.
        original = np.array([[np.inf if x is None else x for x in row] for row in entry["intrinsic"]])
        # Network pixel u is original pixel (u - left + 0.5) / scale - 0.5; so is the principal point.
        np.testing.assert_allclose(original[0, 0], network[0, 0] / scale_x, rtol=1e-6)
        np.testing.assert_allclose(original[1, 2], (network[1, 2] - top + 0.5) / scale_y - 0.5, rtol=1e-6)
        np.testing.assert_allclose(original[0, 2], (network[0, 2] - left + 0.5) / scale_x - 0.5, rtol=1e-6)


def test_summary_says_what_was_done_and_how_to_view_it(scene_folder, tiny, tmp_path, capsys):
    out = tmp_path / "out"
    arguments = [str(scene_folder), "--out", str(out), "--model", str(tiny[1]), "--device", "cpu", "--quiet"]
    assert main(["reconstruct", *arguments, "--formats", "glb", "ply"]) == 0
    summary = capsys.readouterr().out
    assert f"reconstructed {VIEWS} view(s) at 56x42" in summary and "on cpu (float32, attention sdpa)" in summary
    assert "scene_instances.glb: open in Blender" in summary and "points.ply: open in MeshLab" in summary
    assert "colmap" not in summary and not (out / "colmap").exists()
    # A second run into the same folder needs --overwrite, and then replaces it.
    assert main(["reconstruct", *arguments]) == 2
    assert main(["reconstruct", *arguments, "--overwrite", "--formats", "npz"]) == 0
    assert not (out / "points.ply").exists() and (out / "predictions.npz").exists()


def test_a_video_is_sampled_and_reconstructed(scene_folder, tiny, tmp_path, capsys):
    imageio = pytest.importorskip("imageio.v2")
    video = tmp_path / "walk.mp4"
    frames = [np.asarray(Image.open(p)) for p in sorted((scene_folder / "images").iterdir())]
    with imageio.get_writer(str(video), fps=2, format="FFMPEG", codec="libx264", macro_block_size=16) as writer:
        for frame in frames * 3:
            writer.append_data(frame)
    out = tmp_path / "out"
    code = main(["reconstruct", str(video), "--out", str(out), "--frames", "3", "--model", str(tiny[1]), "--quiet"])
    assert code == 0
    assert "note: sampled 3 of 12 video frames" in capsys.readouterr().out
    names = [view["name"] for view in json.loads((out / "reconstruction.json").read_text())["views"]]
    assert names == ["walk.mp4#frame00000", "walk.mp4#frame00006", "walk.mp4#frame00011"]


def test_a_single_image_gives_one_view_and_says_there_are_no_relative_cameras(scene_folder, tiny, tmp_path, capsys):
    image = scene_folder / "images" / "000000.png"
    code = main(["reconstruct", str(image), "--out", str(tmp_path / "out"), "--model", str(tiny[1]), "--quiet"])
    assert code == 0
    summary = capsys.readouterr().out
    assert "reconstructed 1 view(s)" in summary and "no relative cameras" in summary
    assert load_npz(tmp_path / "out" / "predictions.npz")["depth"].shape == (1, 42, 56)
