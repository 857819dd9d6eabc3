"""The shipped example scene: small, made by our engine, and reconstructed by `--example`."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from iggt.assets import make_example_scene as example
from iggt.cli.main import main
from iggt.model.iggt import IGGT
from iggt.synth.generate import GENERATOR_VERSION


def shipped_images():
    return sorted((example.EXAMPLE_DIR / "images").glob("*.png"))


def test_the_example_is_a_few_small_views_from_the_current_engine():
    paths = shipped_images()
    assert len(paths) == example.NUM_VIEWS
    assert all(Image.open(p).size == example.IMAGE_SIZE[::-1] for p in paths)
    assert sum(p.stat().st_size for p in example.EXAMPLE_DIR.rglob("*") if p.is_file()) < 1_000_000
    description = json.loads((example.EXAMPLE_DIR / "example.json").read_text())
    assert description["generator"] == "iggt.synth" and description["seed"] == example.SEED
    # A newer engine renders this seed differently: re-run make_example_scene.
    assert description["generator_version"] == GENERATOR_VERSION


@pytest.mark.slow
def test_the_engine_renders_the_shipped_views_again(tmp_path):
    """About a minute on a CPU: proves the shipped PNGs are the engine's output for the seed."""
    example.make_example_scene(tmp_path / "again")
    for shipped in shipped_images():
        rendered = np.asarray(Image.open(tmp_path / "again" / "images" / shipped.name), dtype=np.int16)
        assert np.abs(rendered - np.asarray(Image.open(shipped), dtype=np.int16)).max() <= 1


def test_example_flag_reconstructs_the_shipped_scene(tmp_path, capsys):
    torch.manual_seed(0)
    weights = IGGT.from_preset("tiny").save_pretrained(tmp_path / "tiny.safetensors")
    out = tmp_path / "demo"
    code = main(["reconstruct", "--example", "--out", str(out), "--model", str(weights), "--device", "cpu", "--quiet"])
    assert code == 0
    assert f"reconstructed {example.NUM_VIEWS} view(s) at 56x56" in capsys.readouterr().out
    views = json.loads((out / "reconstruction.json").read_text())["views"]
    assert [view["name"] for view in views] == [p.name for p in shipped_images()]
