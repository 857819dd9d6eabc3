"""Every bad input to `iggt reconstruct` gives one line on stderr, no traceback, a non-zero exit."""

import os
import subprocess
import sys

import pytest
import torch

from iggt.cli.main import main
from iggt.model.iggt import IGGT


def run_cli(capsys, *arguments) -> tuple[int, str, str]:
    code = main(["reconstruct", *map(str, arguments)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, err, message):
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0
    assert len(lines) == 1, err
    assert lines[0].startswith("iggt reconstruct: error: ")
    assert message in lines[0]
    assert "Traceback" not in err


def written(path, data: bytes):
    path.write_bytes(data)
    return path


BAD_INPUTS = {
    "missing": (lambda d: d / "nothing-here", "does not exist"),
    "empty-folder": (lambda d: d, "has no images"),
    "corrupt-image": (
        lambda d: written(d / "broken.jpg", b"\xff\xd8 not a jpeg"),
        "cannot read image broken.jpg",
    ),
    "unsupported-file": (lambda d: written(d / "scan.heic", b"\x00" * 16), "unsupported input scan.heic"),
    "unsupported-video": (lambda d: written(d / "clip.mp4", b"\x00" * 256), "video clip.mp4"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_inputs(capsys, tmp_path, tiny_weights, case):
    make, message = BAD_INPUTS[case]
    folder = tmp_path / "input"
    folder.mkdir()
    code, _, err = run_cli(capsys, make(folder), "--out", tmp_path / "out", "--model", tiny_weights, "--quiet")
    assert_one_line_error(code, err, message)
    assert not (tmp_path / "out").exists()


def test_corrupt_image_among_good_ones_names_the_file(capsys, tmp_path, photos, tiny_weights):
    written(photos / "5.png", b"\x89PNG\r\n\x1a\n truncated")
    code, _, err = run_cli(capsys, photos, "--out", tmp_path / "out", "--model", tiny_weights, "--quiet")
    assert_one_line_error(code, err, "cannot read image 5.png")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("iggt-nonexistent", "unknown model 'iggt-nonexistent'"),
        ("weights/missing.safetensors", "model file weights/missing.safetensors does not exist"),
    ],
)
def test_unknown_or_missing_model(capsys, tmp_path, photos, model, message):
    code, _, err = run_cli(capsys, photos, "--out", tmp_path / "out", "--model", model, "--quiet")
    assert_one_line_error(code, err, message)


def test_corrupt_model_file(capsys, tmp_path, photos):
    broken = written(tmp_path / "broken.safetensors", b"\x00" * 64)
    code, _, err = run_cli(capsys, photos, "--out", tmp_path / "out", "--model", broken, "--quiet")
    assert_one_line_error(code, err, "broken.safetensors")


def test_weights_of_another_architecture(capsys, tmp_path, photos):
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"encoder.weight": torch.zeros(2, 2)}, str(other))
    code, _, err = run_cli(capsys, photos, "--out", tmp_path / "out", "--model", other, "--quiet")
    assert_one_line_error(code, err, "checkpoint does not match the model")


def test_out_of_gpu_memory_suggests_chunking(capsys, tmp_path, photos, tiny_weights, monkeypatch):
    def exhausted(self, images, query_points=None, **run_time_settings):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")

    monkeypatch.setattr(IGGT, "forward", exhausted)
    code, _, err = run_cli(capsys, photos, "--out", tmp_path / "out", "--model", tiny_weights, "--quiet")
    assert_one_line_error(code, err, "memory running 2 frames at 42x56")
    assert "--chunk" in err and "--max-frames" in err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--out", "{tmp}/out"], "no INPUT given"),
        (["{photos}"], "--out DIR is required"),
        (["{photos}", "--out", "{tmp}/out", "--example"], "give no INPUT with it"),
        (["{photos}", "--out", "{tmp}/out", "--formats", "obj"], "unknown --formats obj"),
        (["{photos}", "--out", "{tmp}/out", "--device", "tpu"], "device 'tpu'"),
        (["{photos}", "--out", "{tmp}/out", "--dtype", "int4"], "unknown dtype 'int4'"),
        (["{photos}", "--out", "{tmp}/out", "--max-frames", "0"], "--max-frames must be at least 1"),
        (["{photos}", "--out", "{tmp}/out", "--min-instance-size", "-1"], "--min-instance-size must be positive"),
        (["{photos}", "--out", "{photos}"], "is not empty; pass --overwrite"),
        (["{photos}", "--out", "{tmp}/out", "--frames", "4"], "--fps and --frames sample a video"),
        (["{photos}", "--out", "{tmp}/out", "--chunk", "0"], "--chunk must be at least 1 frame"),
    ],
    ids=[
        "no-input",
        "no-out",
        "example-and-input",
        "format",
        "device",
        "dtype",
        "max-frames",
        "instance-size",
        "out-not-empty",
        "frames-for-images",
        "chunk",
    ],
)
def test_bad_arguments(capsys, tmp_path, photos, tiny_weights, arguments, message):
    arguments = [a.format(tmp=tmp_path, photos=photos) for a in arguments]
    code, _, err = run_cli(capsys, *arguments, "--model", tiny_weights, "--quiet")
    assert_one_line_error(code, err, message)


@pytest.mark.parametrize(
    ("command", "arguments"),
    [
        ("reconstruct", ["{photos}", "--out", "{tmp}/out", "--model", "{weights}"]),
        ("eval", ["--data", "{photos}", "--out", "{tmp}/report", "--model", "{weights}"]),
        ("synth", ["--out", "{tmp}/scenes", "--scenes", "1"]),
        ("train", ["--output-dir", "{tmp}/run", "--no-progress"]),
    ],
)
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_a_gpu_asked_for_without_one_is_the_same_line_from_every_command(
    capsys, monkeypatch, tmp_path, photos, tiny_weights, command, arguments, device
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a machine without a GPU, wherever this runs
    arguments = [a.format(tmp=tmp_path, photos=photos, weights=tiny_weights) for a in arguments]
    code = main([command, *arguments, "--device", device])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2
    assert lines == [f"iggt {command}: error: device '{device}' asked for but no CUDA GPU is visible; use --device cpu"]
    assert not (tmp_path / "run").exists() and not (tmp_path / "scenes").exists()  # refused before any work


def test_the_installed_command_prints_one_line_without_traceback(tmp_path):
    """The real entry point, in a fresh process: what a user sees."""
    command = [
        sys.executable,
        "-m",
        "iggt.cli.main",
        "reconstruct",
        str(tmp_path / "missing"),
        "--out",
        str(tmp_path / "o"),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"}
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
