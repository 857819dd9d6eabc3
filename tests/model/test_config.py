"""IGGTConfig presets, overrides and validation."""

import pytest

from iggt.errors import ConfigError
from iggt.model.config import PRESETS, IGGTConfig, get_config


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
    assert get_config("tiny", frames_chunk_size=1).frames_chunk_size == 1
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
        ({"frames_chunk_size": 0}, "frames_chunk_size"),
        ({"trunk_dtype": "int8"}, "trunk_dtype"),
        ({"img_size": 60}, "multiple of patch_size"),
    ],
)
def test_invalid_combinations_raise(overrides, message):
    with pytest.raises(ConfigError, match=message):
        get_config("tiny", **overrides)
