"""Saving and loading weights: our safetensors, wrapped torch pickles, VGGT-style files, errors."""

import pickle
import sys

import pytest
import torch

from iggt.errors import CheckpointError
from iggt.model.checkpoint import clean_state_dict, read_checkpoint, save_checkpoint
from iggt.model.config import get_config
from iggt.model.iggt import IGGT


@pytest.fixture(scope="module")
def tiny() -> IGGT:
    torch.manual_seed(0)
    return IGGT.from_preset("tiny", instance_dim=4).eval()


def assert_same_weights(loaded: IGGT, original: IGGT) -> None:
    expected = original.state_dict()
    state = loaded.state_dict()
    assert state.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(state[key], value), key


def test_save_and_load_round_trip_is_exact(tiny, tmp_path):
    path = tiny.save_pretrained(tmp_path / "run")
    assert path.name == "model.safetensors"
    loaded = IGGT.from_pretrained(tmp_path / "run").eval()
    assert loaded.config == tiny.config
    assert_same_weights(loaded, tiny)
    assert loaded.load_report.summary() == "0 missing; 0 unexpected"
    images = torch.rand(1, 2, 3, 56, 56)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images)["instance_feat"], tiny(images)["instance_feat"], rtol=0, atol=0)


def test_wrapped_ddp_pickle_loads_with_the_given_config(tiny, tmp_path):
    path = tmp_path / "ddp.pth"
    torch.save({"epoch": 3, "model": {f"module.{k}": v for k, v in tiny.state_dict().items()}}, path)
    state, config = read_checkpoint(path)
    assert config is None and "aggregator.camera_token" in state
    loaded = IGGT.from_pretrained(path, config=tiny.config)
    assert_same_weights(loaded, tiny)


def test_wrong_shape_names_the_key_and_both_shapes(tiny, tmp_path):
    state = dict(tiny.state_dict())
    state["camera_head.embed_pose.bias"] = torch.zeros(5)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    expected = tuple(tiny.camera_head.embed_pose.bias.shape)
    with pytest.raises(CheckpointError, match=rf"'camera_head.embed_pose.bias' has shape \(5,\).*{expected}"):
        IGGT.from_pretrained(path, config=tiny.config, strict=False)


def test_strict_load_refuses_missing_keys_and_non_strict_reports_them(tiny):
    state = {k: v for k, v in tiny.state_dict().items() if not k.startswith("camera_head.")}
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="missing.*unexpected"):
        IGGT.from_state_dict(tiny.config, state)
    loaded = IGGT.from_state_dict(tiny.config, state, strict=False)
    report = loaded.load_report
    assert report.unexpected == ["extra.weight"]
    assert report.missing and all(k.startswith("camera_head.") for k in report.missing)
    assert report.fresh_modules == ["camera_head"]
    assert not any(p.is_meta for p in loaded.parameters())
    with torch.no_grad():
        assert torch.isfinite(loaded.eval()(torch.rand(1, 2, 3, 56, 56))["pose_enc"]).all()


def test_vggt_checkpoint_loads_strictly_with_a_fresh_instance_path(tiny):
    state = {k: v for k, v in tiny.state_dict().items() if not k.startswith(("part_adaptor.", "part_head."))}
    loaded = IGGT.from_state_dict(tiny.config, state)
    assert loaded.load_report.fresh_modules == ["part_adaptor", "part_head"]
    torch.testing.assert_close(loaded.aggregator.camera_token, tiny.aggregator.camera_token)
    assert not any(t.is_meta for t in loaded.state_dict().values())


def test_missing_file_raises_one_line(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist") as error:
        IGGT.from_pretrained(tmp_path / "nothing.safetensors")
    assert "\n" not in str(error.value)


def test_unreadable_and_unknown_files_raise(tmp_path):
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="corrupt.safetensors"):
        read_checkpoint(corrupt)
    odd = tmp_path / "weights.npz"
    odd.write_bytes(b"x")
    with pytest.raises(CheckpointError, match="unknown suffix"):
        read_checkpoint(odd)


def test_pickles_that_are_not_weights_raise_one_line(tmp_path):
    pickled = tmp_path / "objects.pt"
    pickled.write_bytes(pickle.dumps({"x": {1, 2}}))  # weights-only loading refuses sets, with a long hint
    with pytest.raises(CheckpointError, match="objects.pt") as raised:
        read_checkpoint(pickled)
    assert len(str(raised.value).splitlines()) == 1


def test_hub_id_without_huggingface_hub_explains_local_files(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(CheckpointError, match="huggingface_hub is not installed.*local file"):
        IGGT.from_pretrained("someone/some-model")


def test_clean_state_dict_rejects_containers_without_weights():
    with pytest.raises(CheckpointError, match="no state_dict"):
        clean_state_dict({"epoch": 1, "optimizer": {"lr": 0.1}})


def test_files_without_config_default_to_large_and_report_the_mismatch(tiny, tmp_path):
    path = tmp_path / "plain.pt"
    torch.save(tiny.state_dict(), path)
    assert get_config("large").embed_dim != tiny.config.embed_dim
    with pytest.raises(CheckpointError, match="has shape"):
        IGGT.from_pretrained(path)


def test_half_precision_files_load_into_float32_parameters(tiny, tmp_path):
    state = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in tiny.state_dict().items()}
    path = save_checkpoint(state, tiny.config.to_dict(), tmp_path / "half.safetensors")
    loaded = IGGT.from_pretrained(path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    expected = tiny.aggregator.camera_token.to(torch.bfloat16).float()
    assert torch.equal(loaded.aggregator.camera_token, expected)
