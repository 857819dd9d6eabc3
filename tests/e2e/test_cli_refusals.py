"""Inputs and model files `iggt reconstruct` refuses: one line naming the value and the CLI's own fix."""

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from iggt.cli.main import main

SRC = Path(__file__).parents[2] / "src"


def one_line_error(capsys, *arguments) -> str:
    code = main(["reconstruct", *map(str, arguments), "--quiet"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("iggt reconstruct: error: "), err
    return lines[0]


def test_images_smaller_than_a_patch_are_refused_before_the_model_loads(capsys, tmp_path):
    folder = tmp_path / "dots"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(folder / name)
    # The model file does not exist: the size check must come first.
    line = one_line_error(capsys, folder, "--out", tmp_path / "out", "--model", tmp_path / "none.safetensors")
    assert "image a.png is 1x1 pixels" in line and "at least 14 px" in line
    assert not (tmp_path / "out").exists()


def png_header_only(path, width, height):
    """A PNG whose header announces width x height; its pixel data is a stub never decoded."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00")))
    return path


@pytest.mark.parametrize(
    ("width", "height", "message"),
    [(12000, 10000, "is 12000x10000 pixels (120 MP)"), (30000, 20000, "has 600 MP")],
    ids=["over-our-bound", "over-pil-bound"],
)
def test_an_image_over_the_pixel_bound_is_refused_from_its_header(
    capsys, tmp_path, photos, tiny_weights, width, height, message
):
    png_header_only(photos / "huge.png", width, height)
    line = one_line_error(capsys, photos, "--out", tmp_path / "out", "--model", tiny_weights)
    assert f"image huge.png {message}" in line and "above the 100 MP" in line


def test_an_infinite_min_instance_size_is_refused(capsys, tmp_path, photos, tiny_weights):
    line = one_line_error(
        capsys, photos, "--out", tmp_path / "out", "--model", tiny_weights, "--min-instance-size", "inf"
    )
    assert "--min-instance-size inf" in line and "finite" in line


def test_a_model_folder_without_weights_says_what_it_lacks(capsys, tmp_path, photos):
    folder = tmp_path / "owner" / "model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    cwd = os.getcwd()
    os.chdir(tmp_path)  # "owner/model" is both a folder here and the shape of a hub id
    try:
        line = one_line_error(capsys, photos, "--out", tmp_path / "out", "--model", "owner/model")
    finally:
        os.chdir(cwd)
    assert "folder owner/model has no model.safetensors" in line and "config.json" in line


def test_nan_weights_are_refused_at_load_naming_the_tensor(capsys, tmp_path, photos, tiny_model):
    state = {key: value.clone() for key, value in tiny_model.state_dict().items()}
    state["depth_head.scratch.output_conv2.2.bias"][0] = float("nan")
    path = tmp_path / "nan.safetensors"
    save_file(state, str(path), metadata={"format": "pt", "iggt_config": json.dumps(tiny_model.config.to_dict())})
    line = one_line_error(capsys, photos, "--out", tmp_path / "out", "--model", path)
    assert "'depth_head.scratch.output_conv2.2.bias'" in line and "not finite" in line


def test_a_broken_embedded_config_is_one_line(capsys, tmp_path, photos, tiny_model):
    path = tmp_path / "broken_config.safetensors"
    save_file(tiny_model.state_dict(), str(path), metadata={"format": "pt", "iggt_config": "{not json"})
    line = one_line_error(capsys, photos, "--out", tmp_path / "out", "--model", path)
    assert "broken_config.safetensors" in line and "config" in line and "re-save" in line


def test_mismatched_weights_give_command_line_advice(capsys, tmp_path, photos):
    other = tmp_path / "other.safetensors"
    save_file({"encoder.weight": torch.zeros(2, 2)}, str(other))
    line = one_line_error(capsys, photos, "--out", tmp_path / "out", "--model", other)
    assert "checkpoint does not match the model" in line
    assert "strict=False" not in line and "--model" in line


TIMED_MAIN = """
import sys, time
import huggingface_hub, iggt.inference.reconstruct, iggt.model.iggt  # imports are not what is timed
from iggt.cli.main import main
start = time.perf_counter()
code = main(sys.argv[1:])
print(code, time.perf_counter() - start)
"""


@pytest.mark.parametrize("hub_offline", [True, False], ids=["HF_HUB_OFFLINE", "no-network"])
def test_a_hub_id_without_network_fails_fast_and_says_so(tmp_path, hub_offline):
    env = {"PYTHONPATH": str(SRC), "HF_HOME": str(tmp_path / "hf"), "PATH": os.environ.get("PATH", "")}
    if hub_offline:
        env["HF_HUB_OFFLINE"] = "1"
    else:  # a closed local port stands in for "no network" on machines that have one
        env["HF_ENDPOINT"] = "http://127.0.0.1:9"
    photo = tmp_path / "p.png"
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(photo)
    arguments = ["reconstruct", str(photo), "--out", str(tmp_path / "o"), "--model", "someone/weights", "--quiet"]
    done = subprocess.run([sys.executable, "-c", TIMED_MAIN, *arguments], capture_output=True, text=True, env=env)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr  # no retry warnings
    assert "someone/weights" in lines[0] and "no network" in lines[0]
    code, seconds = done.stdout.split()
    # One request without retries; a refused connection answers at once (the retry loop took 26 s).
    assert code == "2" and float(seconds) < 5, seconds


def test_an_api_option_in_an_error_is_spelled_as_each_interface_spells_it():
    from iggt.cli.spellings import cli_message
    from iggt.errors import ConfigError
    from iggt.instances import InstanceConfig

    with pytest.raises(ConfigError) as caught:
        InstanceConfig(min_instance_size=float("inf"))
    assert str(caught.value).startswith("InstanceConfig.min_instance_size=inf must be")  # the Python API's words
    assert cli_message(caught.value, "reconstruct").startswith("--min-instance-size inf must be")
