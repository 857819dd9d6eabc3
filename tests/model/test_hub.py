"""Resolving model sources: shipped names, local files and folders, hub ids (one rule), and clear failures."""

from pathlib import Path

import pytest
import torch

from iggt.errors import CheckpointError
from iggt.model import hub
from iggt.model.iggt import IGGT


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    torch.manual_seed(0)
    model = IGGT.from_preset("tiny")
    path = model.save_pretrained(tmp_path_factory.mktemp("weights") / "tiny.safetensors")
    return path, model


def test_a_local_file_loads_the_saved_network(tiny_file):
    path, original = tiny_file
    loaded = hub.load_model(str(path))
    assert not loaded.training
    assert loaded.config == original.config
    for key, value in original.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)


def test_a_shipped_name_reads_the_file_in_the_assets_folder(tiny_file, tmp_path, monkeypatch):
    path, _ = tiny_file
    monkeypatch.setattr(hub, "SHIPPED_MODELS_DIR", tmp_path)
    (tmp_path / "iggt-small.safetensors").write_bytes(path.read_bytes())
    assert hub.resolve_model_source(hub.DEFAULT_MODEL) == tmp_path / "iggt-small.safetensors"
    assert hub.load_model("iggt-small").config.img_size == 56
    assert IGGT.from_pretrained("iggt-small").config.img_size == 56  # the network resolves the same way


def test_a_missing_shipped_file_says_where_it_was_expected(tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "SHIPPED_MODELS_DIR", tmp_path)
    with pytest.raises(CheckpointError, match=r"shipped model 'iggt-small' is missing .*--model PATH"):
        hub.load_model("iggt-small")


def test_an_unknown_name_lists_the_known_names():
    with pytest.raises(CheckpointError, match=r"unknown model 'iggt-huge'.*\(iggt-small\)"):
        hub.load_model("iggt-huge")


def test_a_missing_weights_file_is_not_mistaken_for_a_hub_id():
    with pytest.raises(CheckpointError, match="model file models/none.safetensors does not exist"):
        hub.resolve_model_source("models/none.safetensors")
    assert hub.is_hub_id("owner/some-model")


@pytest.mark.parametrize(
    ("text", "is_hub_id"),
    [
        ("owner/some-model", True),
        ("facebook/VGGT-1B", True),
        ("models/none.safetensors", False),  # a weights suffix: a path
        ("runs/final.pt", False),
        ("./owner", False),
        ("~/weights", False),
        ("owner\\name", False),
        ("a/b/c", False),
        ("/absolute", False),
        ("owner/", False),
        ("name", False),
    ],
)
def test_one_rule_tells_hub_ids_from_paths(text, is_hub_id):
    assert hub.is_hub_id(text) is is_hub_id


def test_a_folder_resolves_to_its_weights_file_before_the_hub_rule(tiny_file, tmp_path, monkeypatch):
    path, original = tiny_file
    folder = tmp_path / "owner" / "model"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(path.read_bytes())
    monkeypatch.chdir(tmp_path)  # "owner/model" is both this folder and the shape of a hub id
    assert hub.resolve_model_source("owner/model") == Path("owner/model/model.safetensors")
    assert IGGT.from_pretrained("owner/model").config == original.config
    assert hub.resolve_model_source(path) == path


def test_a_folder_without_weights_names_what_it_holds(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(CheckpointError, match=r"has no model.safetensors \(it holds \['notes.txt'\]\)"):
        hub.resolve_model_source(tmp_path)


def test_anything_else_is_an_unknown_model_naming_every_kind_of_source(tmp_path):
    with pytest.raises(CheckpointError, match=r"unknown model .*not a known name \(iggt-small\).*hub id owner/name"):
        IGGT.from_pretrained(tmp_path / "nothing")


def test_a_corrupt_file_is_a_checkpoint_error(tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00" * 32)
    with pytest.raises(CheckpointError, match="broken.safetensors"):
        hub.load_model(str(broken))
