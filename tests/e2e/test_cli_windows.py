"""`iggt reconstruct --window K --overlap M` end to end with the tiny model on the CPU."""

import json

import numpy as np
import pytest
from PIL import Image

from iggt.cli.main import main
from iggt.cli.options import DEFAULT_OVERLAP
from iggt.inference import windows
from iggt.inference.preprocess import preprocess_images
from iggt.inference.runner import run_model
from iggt.io.images import read_image

FRAMES = 7


@pytest.fixture
def capture(tmp_path):
    folder = tmp_path / "capture"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for index in range(FRAMES):
        Image.fromarray(rng.integers(0, 256, (42, 56, 3), dtype=np.uint8)).save(folder / f"{index:02d}.png")
    return folder


def test_a_capture_longer_than_the_window_runs_in_windows(capture, tiny_model, tiny_weights, tmp_path, capsys):
    out = tmp_path / "out"
    arguments = [str(capture), "--out", str(out), "--model", str(tiny_weights), "--device", "cpu", "--quiet"]
    code = main(["reconstruct", *arguments, "--window", "4", "--overlap", "2", "--formats", "npz", "json"])
    assert code == 0
    stdout = capsys.readouterr().out
    assert "note: windowed: 3 windows of 4 frames (overlap 2/3): frames 0-3, 2-5, 3-6" in stdout
    with np.load(out / "predictions.npz") as predictions:
        assert predictions["extrinsic"].shape == (FRAMES, 3, 4)
        # the world is the first window's: its frames (0-2 lie nearest its centre) are its own output
        images = [read_image(path) for path in sorted(capture.iterdir())]
        first_window = run_model(tiny_model, preprocess_images(images[:4], 56, 14, "crop")[0], device="cpu")
        np.testing.assert_allclose(predictions["extrinsic"][:3], first_window.extrinsic[:3], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(predictions["depth"][:3], first_window.depth[:3], rtol=1e-5)
    with np.load(out / "instances.npz") as instances:
        assert instances["labels"].shape == (FRAMES, 42, 56)
    summary = json.loads((out / "reconstruction.json").read_text())
    assert summary["num_views"] == FRAMES and "windows" in summary["timings_s"]


def test_too_small_an_overlap_is_refused_before_the_model_loads(capture, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "reconstruct",
            str(capture),
            "--out",
            str(out),
            "--model",
            "missing.safetensors",
            "--window",
            "4",
            "--overlap",
            "1",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert err == (
        "iggt reconstruct: error: --overlap 1 is below the minimum of 2 frames that consecutive windows must "
        "share to be aligned; use --overlap 2 or more"
    )


def test_the_cli_default_overlap_is_the_librarys():
    assert DEFAULT_OVERLAP == windows.DEFAULT_OVERLAP


def test_store_keeps_the_windows_result_on_disk_with_the_same_outputs(capture, tiny_weights, tmp_path, capsys):
    common = [str(capture), "--model", str(tiny_weights), "--device", "cpu", "--quiet", "--window", "4"]
    common += ["--overlap", "2", "--formats", "npz"]
    assert main(["reconstruct", *common, "--out", str(tmp_path / "memory")]) == 0
    store = tmp_path / "store"
    assert main(["reconstruct", *common, "--out", str(tmp_path / "disk"), "--store", str(store)]) == 0
    assert f"note: the windows' result is stored in {store}" in capsys.readouterr().out
    memory, disk = np.load(tmp_path / "memory" / "predictions.npz"), np.load(tmp_path / "disk" / "predictions.npz")
    with memory, disk:
        for name in ("depth", "world_points", "extrinsic", "instance_feat"):
            np.testing.assert_array_equal(disk[name], memory[name])
            np.testing.assert_array_equal(np.load(store / f"{name}.npy"), memory[name])
        # the network's input was preprocessed into the store, one view at a time
        np.testing.assert_array_equal(np.load(store / "network_input.npy").transpose(0, 2, 3, 1), memory["images"])
    for view in range(FRAMES):  # the maps at the original resolution, resampled as they are written
        name = f"original_resolution/depth_{view:03d}.npy"
        np.testing.assert_array_equal(np.load(tmp_path / "disk" / name), np.load(tmp_path / "memory" / name))


def test_a_non_empty_store_is_refused_before_the_model_loads(capture, tmp_path, capsys):
    store = tmp_path / "store"
    store.mkdir()
    (store / "keep.txt").write_text("mine")
    arguments = [str(capture), "--out", str(tmp_path / "out"), "--model", "missing.safetensors", "--store", str(store)]
    assert main(["reconstruct", *arguments]) != 0
    err = capsys.readouterr().err.strip()
    assert err == (
        f"iggt reconstruct: error: --store {store} is not empty; give an empty or new folder (the result's files "
        "would overwrite its files)"
    )
    assert (store / "keep.txt").read_text() == "mine"
