"""The shared option groups: one definition per option across subcommands, unchanged defaults,
and one error line for one bad value whichever subcommand gets it."""

import argparse

import numpy as np
import pytest
import torch
from PIL import Image

from iggt.cli.main import build_parser, main
from iggt.cli.options import ComputeOptions, FrameOptions, compute_options, frame_options, instance_config
from iggt.instances.config import InstanceConfig

REQUIRED = {"reconstruct": [], "eval": ["--data", "data", "--out", "report"]}
SHARED = ["model", "device", "dtype", "chunk", "mode", "granularity"]
FRAGMENT = ["--model", "weights/x.safetensors", "--device", "cpu", "--dtype", "fp32", "--chunk", "3"]
FRAGMENT += ["--mode", "pad", "--granularity", "fine"]


def subparser(command: str) -> argparse.ArgumentParser:
    parser = build_parser([command])
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]


def parse(command: str, *argv: str) -> argparse.Namespace:
    return subparser(command).parse_args([*REQUIRED.get(command, []), *argv])


def test_an_option_shared_by_reconstruct_and_eval_is_one_definition():
    actions = {command: {a.dest: a for a in subparser(command)._actions} for command in REQUIRED}
    for dest in SHARED:
        reconstruct, evaluate = actions["reconstruct"][dest], actions["eval"][dest]
        for attribute in ("option_strings", "default", "type", "choices", "help", "metavar", "nargs"):
            assert getattr(reconstruct, attribute) == getattr(evaluate, attribute), (dest, attribute)


def test_the_same_argv_fragment_gives_equal_typed_configs_in_reconstruct_and_eval():
    reconstruct, evaluate = parse("reconstruct", *FRAGMENT), parse("eval", *FRAGMENT)
    expected = ComputeOptions(device=torch.device("cpu"), dtype=torch.float32, head_dtype=torch.float32, chunk_size=3)
    assert compute_options(reconstruct) == compute_options(evaluate) == expected
    fine_on_cpu = InstanceConfig.for_granularity("fine", device="cpu")
    assert instance_config(reconstruct, expected.device) == instance_config(evaluate, expected.device) == fine_on_cpu
    assert (reconstruct.model, reconstruct.mode) == (evaluate.model, evaluate.mode) == ("weights/x.safetensors", "pad")


def test_reconstruct_reads_frame_and_instance_size_options():
    args = parse("reconstruct", "--max-frames", "6", "--frames", "12", "--min-instance-size", "40")
    assert frame_options(args) == FrameOptions(max_frames=6, fps=None, frames=12)
    assert instance_config(args, torch.device("cpu")).min_instance_size == 40


DEFAULTS = {
    "model": "iggt-small",
    "device": "auto",
    "dtype": "auto",
    "head_dtype": "auto",
    "chunk": None,
    "mode": "crop",
}
DEFAULTS["granularity"] = "medium"
EXPECTED_DEFAULTS = {
    "reconstruct": {**DEFAULTS, "max_frames": None, "fps": None, "frames": None, "min_instance_size": None},
    "eval": {**DEFAULTS, "img_size": None},
    "synth": {"device": "cpu"},  # the scene engine renders on the CPU unless told otherwise
    "train": {"device": None},  # None: train.device of the config decides
}


@pytest.mark.parametrize("command", EXPECTED_DEFAULTS)
def test_defaults_are_unchanged(command, monkeypatch):
    required = {"synth": ["--out", "scenes"]}.get(command, [])
    args = parse(command, *required)
    assert {name: getattr(args, name) for name in EXPECTED_DEFAULTS[command]} == EXPECTED_DEFAULTS[command]
    if command in REQUIRED:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # "auto" on a machine without a GPU
        assert compute_options(args) == ComputeOptions(torch.device("cpu"), torch.float32, torch.float32, None)
        assert instance_config(args, torch.device("cpu")) == InstanceConfig(device="cpu")


@pytest.fixture
def arguments(tmp_path):
    """argv before the bad value, per subcommand: valid enough to reach the option's check."""
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(photos / "0.png")
    return {
        "reconstruct": ["reconstruct", str(photos), "--out", str(tmp_path / "out")],
        "eval": ["eval", "--data", str(photos), "--out", str(tmp_path / "out")],
    }


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (["--chunk", "0"], "--chunk must be at least 1 frame, got 0"),
        (["--device", "mps"], "device 'mps' is not supported; use auto, cpu, cuda or cuda:N"),
        (["--dtype", "int4"], "unknown dtype 'int4'; use auto, float32 (fp32), bfloat16 (bf16) or float16 (fp16)"),
    ],
    ids=["chunk", "device", "dtype"],
)
def test_a_bad_value_is_the_same_line_from_reconstruct_and_eval(capsys, tmp_path, arguments, bad, message):
    for command, argv in arguments.items():
        assert main([*argv, *bad, "--quiet"]) == 2
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert lines == [f"iggt {command}: error: {message}"]
        assert not (tmp_path / "out").exists()  # refused before any output


MALFORMED = {"mode": ["--mode", "squash"], "granularity": ["--granularity", "huge"], "chunk-type": ["--chunk", "two"]}


@pytest.mark.parametrize("bad", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_value_is_the_same_usage_error_from_reconstruct_and_eval(capsys, arguments, bad):
    errors = {}
    for command, argv in arguments.items():
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, *bad])
        assert exit_info.value.code == 2
        last = capsys.readouterr().err.splitlines()[-1]
        assert last.startswith(f"iggt {command}: error: argument {bad[0]}: invalid ") and repr(bad[1]) in last
        errors[command] = last.removeprefix(f"iggt {command}: ")  # argparse's own wording varies by Python
    assert errors["reconstruct"] == errors["eval"]
