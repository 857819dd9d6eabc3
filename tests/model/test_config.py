"""IGGTConfig presets, overrides and validation; frozen, and older checkpoints' configs still read."""

import dataclasses
import json
from pathlib import Path

import pytest
from safetensors import safe_open

from iggt.errors import ConfigError
from iggt.model.config import PRESETS, RETIRED_FIELDS, IGGTConfig, get_config

SHIPPED_SMALL = Path(__file__).parents[2] / "src" / "iggt" / "assets" / "models" / "iggt-small.safetensors"


def test_large_preset_is_the_official_architecture():
    config = get_config("large")
    assert (config.embed_dim, config.depth, config.num_heads) == (1024, 24, 16)
    assert (config.patch_embed_depth, config.num_register_tokens, config.img_size) == (24, 4, 518)
    assert config.intermediate_layer_idx == (4, 11, 17, 23)
    assert config.dpt_out_channels == (256, 512, 1024, 1024)
    assert config.enable_track


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_dict(name):
    config = get_config(name)
    assert IGGTConfig.from_dict(config.to_dict()) == config


def test_overrides_apply_and_unknown_names_raise():
    assert get_config("tiny", instance_dim=4).instance_dim == 4
    with pytest.raises(ConfigError, match="unknown model preset 'huge'"):
        get_config("huge")
    with pytest.raises(ConfigError, match="embed_dimm"):
        get_config("tiny", embed_dimm=3)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_heads": 3}, "multiple of 4"),
        ({"intermediate_layer_idx": (0, 1, 2, 9)}, "must lie in"),
        ({"intermediate_layer_idx": (0, 1, 2)}, "needs 4"),
        ({"instance_features": 32}, "must equal dpt_features"),
        ({"img_size": 60}, "multiple of patch_size"),
    ],
)
def test_invalid_combinations_raise(overrides, message):
    with pytest.raises(ConfigError, match=message):
        get_config("tiny", **overrides)


def test_a_config_is_frozen_after_build():
    config = get_config("tiny")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.depth = 2
    assert config == get_config("tiny")
    assert hash(config) == hash(get_config("tiny"))  # usable as a key: every field is immutable


def test_run_time_settings_are_not_fields_any_more():
    names = {f.name for f in dataclasses.fields(IGGTConfig)}
    assert names.isdisjoint(RETIRED_FIELDS)
    assert set(get_config("tiny").to_dict()) == names  # what save_pretrained embeds


def test_a_dict_of_an_older_checkpoint_reads_and_drops_the_run_time_keys():
    old = {
        **get_config("tiny").to_dict(),
        "frames_chunk_size": 4,
        "trunk_dtype": "bfloat16",
        "activation_checkpointing": True,
        "extra": {"run": "x"},
    }
    assert IGGTConfig.from_dict(old) == get_config("tiny")
    with pytest.raises(ConfigError, match=r"unknown IGGTConfig field\(s\) \['frame_chunk_size'\]"):
        IGGTConfig.from_dict({**old, "frame_chunk_size": 4})  # a misspelling is still refused


def test_the_shipped_checkpoint_embeds_exactly_the_small_preset():
    # Its weights (phase 4 on, 2026-12-02) were saved after run-time settings left the config: the
    # embedded dict is the preset's, field for field (the older layout is read by the test above).
    with safe_open(str(SHIPPED_SMALL), framework="pt") as handle:
        embedded = json.loads(handle.metadata()["iggt_config"])
    assert embedded == json.loads(json.dumps(get_config("small").to_dict()))  # tuples stored as lists
    assert set(RETIRED_FIELDS).isdisjoint(embedded)
    assert IGGTConfig.from_dict(embedded) == get_config("small")
