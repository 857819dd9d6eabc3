"""The opt-in fast modes of the trunk's global attention: exact stays exact, each approximation
keeps the shapes and reduces to the exact computation when it drops nothing."""

import pytest
import torch

from iggt.errors import ConfigError
from iggt.model.aggregator import Aggregator
from iggt.model.config import get_config
from iggt.model.fast_mode import FAST_MODES, FastMode, fast_mode_name, get_fast_mode
from iggt.model.iggt import IGGT
from iggt.model.layers.block import Block
from iggt.model.layers.key_value_subsampling import SubsampledKeyValues, grid_indices, kept_key_indices
from iggt.model.layers.rope import RotaryPositionEmbedding2D, grid_positions
from iggt.model.layers.token_merging import MergedTokens, plan_merge

SPECIAL, GRID = 5, (4, 6)  # camera + 4 registers, then a 4 x 6 patch grid
PER_FRAME = SPECIAL + GRID[0] * GRID[1]
TOKEN_PRESETS = [name for name, mode in FAST_MODES.items() if not mode.fp8_attention]
"""The presets that run on the CPU; fp8 needs FlashAttention-3 (tests/model/test_fp8_attention.py)."""


@pytest.fixture(scope="module")
def aggregator():
    torch.manual_seed(0)
    return Aggregator(get_config("tiny"), output_layers=range(4)).eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(1, 4, 3, 42, 56, generator=torch.Generator().manual_seed(1))


def block_and_scene(frames=3, batch=1):
    """A float64 global block with QK-norm and RoPE, and (B, S * P, dim) tokens with their positions."""
    generator = torch.Generator().manual_seed(2)
    block = Block(32, 2, qk_norm=True, rope=RotaryPositionEmbedding2D(100.0), init_values=0.5).double().eval()
    tokens = torch.randn(batch, frames * PER_FRAME, 32, generator=generator, dtype=torch.float64)
    positions = grid_positions(batch * frames, *GRID, SPECIAL, torch.device("cpu")).reshape(batch, -1, 2)
    return block, tokens, positions


def reference_trunk(aggregator, images):
    """The alternating loop as written before the fast modes: frame blocks per frame, global blocks over the scene."""
    batch, frames, _, height, width = images.shape
    tokens = aggregator.embed(images)
    count, dim = tokens.shape[1:]
    positions = grid_positions(batch * frames, height // 14, width // 14, aggregator.patch_start_idx, images.device)
    outputs = {}
    for frame_block, global_block in zip(aggregator.frame_blocks, aggregator.global_blocks, strict=True):
        tokens = frame_block(tokens.reshape(batch * frames, count, dim), positions)
        frame_output = tokens.reshape(batch, frames, count, dim)
        tokens = global_block(tokens.reshape(batch, frames * count, dim), positions.reshape(batch, -1, 2))
        outputs[len(outputs)] = torch.cat([frame_output, tokens.reshape(batch, frames, count, dim)], dim=-1)
    return outputs


def test_exact_mode_is_the_default_and_computes_the_trunk_as_before(aggregator, images):
    with torch.inference_mode():
        expected = reference_trunk(aggregator, images)
        for mode in (None, "exact", FastMode()):
            outputs, _ = aggregator(images, mode)
            assert all(torch.equal(outputs[i], expected[i]) for i in expected)


@pytest.mark.parametrize("name", TOKEN_PRESETS)
def test_every_preset_keeps_the_output_shapes(name):
    torch.manual_seed(0)
    model = IGGT.from_preset("tiny").eval()
    images = torch.rand(1, 5, 3, 42, 56)
    with torch.inference_mode():
        exact, fast = model(images), model(images, fast_mode=name)
    for key, value in exact.items():
        assert fast[key].shape == value.shape, key
        assert torch.isfinite(fast[key]).all(), key


def test_approximate_presets_change_the_trunk_and_exact_does_not(aggregator, images):
    with torch.inference_mode():
        exact, _ = aggregator(images)
        for name in TOKEN_PRESETS:
            outputs, _ = aggregator(images, name)
            assert torch.equal(outputs[3], exact[3]) == (name == "exact"), name


def test_early_global_layers_run_as_frame_blocks(aggregator, images):
    mode = FastMode(frame_wise_fraction=0.5)  # 2 of the tiny preset's 4 global layers
    with torch.inference_mode():
        outputs, _ = aggregator(images, mode)
        frame_half, global_half = outputs[0].chunk(2, dim=-1)
        positions = grid_positions(4, 3, 4, aggregator.patch_start_idx, images.device)
        expected = aggregator.global_blocks[0](frame_half.reshape(4, *frame_half.shape[2:]), positions)
    torch.testing.assert_close(global_half, expected.reshape(global_half.shape))


def test_with_every_global_layer_frame_wise_no_frame_sees_another(aggregator, images):
    changed = images.clone()
    changed[:, 2] = torch.rand(3, 42, 56, generator=torch.Generator().manual_seed(3))
    mode = FastMode(frame_wise_fraction=1.0)
    with torch.inference_mode():
        before, _ = aggregator(images, mode)
        after, _ = aggregator(changed, mode)
        exact_before, _ = aggregator(images)
        exact_after, _ = aggregator(changed)
    unchanged = [0, 1, 3]
    torch.testing.assert_close(after[3][:, unchanged], before[3][:, unchanged])
    assert not torch.allclose(exact_after[3][:, unchanged], exact_before[3][:, unchanged])


def test_frame_wise_layers_count_from_the_first():
    assert FAST_MODES["avggt"].frame_wise_layers(24) == 8
    assert FAST_MODES["avggt"].frame_wise_layers(6) == 2
    assert FastMode(frame_wise_fraction=1 / 6).frame_wise_layers(6) == 1
    assert FastMode(frame_wise_fraction=0.3333333).frame_wise_layers(6) == 2  # nearest, not floor
    assert FastMode(frame_wise_fraction=1.0).frame_wise_layers(4) == 4


def test_kept_keys_are_special_tokens_a_strided_grid_and_all_of_the_first_frame():
    kept = kept_key_indices(3, PER_FRAME, SPECIAL, GRID, 2, keep_first_frame=True, device=torch.device("cpu"))
    patches = [SPECIAL + row * GRID[1] + col for row in (1, 3) for col in (1, 3, 5)]
    second = [*range(SPECIAL), *patches]
    assert kept.tolist() == [
        *range(PER_FRAME),
        *(PER_FRAME + i for i in second),
        *(2 * PER_FRAME + i for i in second),
    ]
    without_first = kept_key_indices(2, PER_FRAME, SPECIAL, GRID, 2, keep_first_frame=False, device=torch.device("cpu"))
    assert without_first[: len(second)].tolist() == second


def test_grid_indices_cover_every_cell_of_the_stride():
    indices = grid_indices(7, 9, 3, torch.device("cpu"))
    assert indices.tolist() == [row * 9 + col for row in (1, 4) for col in (1, 4, 7)]


def test_subsampling_that_keeps_every_key_equals_exact_attention():
    block, tokens, positions = block_and_scene()
    every = torch.arange(tokens.shape[1])
    mixer = SubsampledKeyValues(every, 3, PER_FRAME, SPECIAL, mean_fill=False)
    torch.testing.assert_close(block(tokens, positions, mixer), block(tokens, positions))


def test_mean_fill_adds_one_key_per_frame_that_is_the_mean_of_its_patches():
    # With one frame whose patches all equal its camera token, attending to the camera token alone
    # or to it plus the mean patch token (the same key and value) gives the same result.
    block, tokens, positions = block_and_scene(frames=1)
    tokens[:, SPECIAL:] = tokens[:, :1]
    positions = torch.zeros_like(positions)  # RoPE at the origin: equal tokens give equal keys
    camera_only = SubsampledKeyValues(torch.tensor([0]), 1, PER_FRAME, SPECIAL, mean_fill=False)
    with_mean = SubsampledKeyValues(torch.tensor([0]), 1, PER_FRAME, SPECIAL, mean_fill=True)
    torch.testing.assert_close(block(tokens, positions, with_mean), block(tokens, positions, camera_only))
    different = SubsampledKeyValues(torch.tensor([1]), 1, PER_FRAME, SPECIAL, mean_fill=True)
    assert not torch.allclose(block(tokens, positions, different), block(tokens, positions, camera_only))


def test_merging_nothing_equals_exact_attention():
    block, tokens, positions = block_and_scene(batch=2)
    for stride, fraction in ((2, 0.0), (1, 1.0)):  # no source merged; every patch a destination
        mixer = MergedTokens(3, SPECIAL, GRID, stride, fraction, keep_first_frame=False)
        torch.testing.assert_close(block(tokens, positions, mixer), block(tokens, positions))


def test_a_merged_token_is_the_mean_of_its_group_and_each_member_takes_its_result():
    _, tokens, _ = block_and_scene(batch=2)
    plan = plan_merge(tokens, 3, SPECIAL, GRID, stride=2, fraction=0.5, keep_first_frame=True)
    for scene in range(2):
        kept, slot = plan.kept[scene], plan.slot[scene]
        assert torch.equal(kept, kept.unique())  # ascending, no repeats
        assert torch.equal(slot[kept], torch.arange(len(kept)))
        merged = plan.merge(tokens)[scene]
        for position in range(len(kept)):
            members = (slot == position).nonzero().squeeze(1)
            torch.testing.assert_close(merged[position], tokens[scene, members].mean(0))
            assert (members // PER_FRAME == kept[position] // PER_FRAME).all()  # merges stay within a frame
    results = torch.randn(2, plan.kept.shape[1], 4, dtype=torch.float64)
    torch.testing.assert_close(plan.unmerge(results), results.gather(1, plan.slot[..., None].expand(-1, -1, 4)))


def test_special_tokens_destinations_and_the_first_frame_never_merge():
    _, tokens, _ = block_and_scene()
    plan = plan_merge(tokens, 3, SPECIAL, GRID, stride=2, fraction=1.0, keep_first_frame=True)
    destinations = [SPECIAL + row * GRID[1] + col for row in (1, 3) for col in (1, 3, 5)]
    per_later_frame = [*range(SPECIAL), *destinations]
    expected = [
        *range(PER_FRAME),
        *(PER_FRAME + i for i in per_later_frame),
        *(2 * PER_FRAME + i for i in per_later_frame),
    ]
    assert plan.kept[0].tolist() == expected
    assert plan.sources.shape[1] == 2 * (GRID[0] * GRID[1] - len(destinations))


def test_the_most_similar_patches_merge_first():
    _, tokens, _ = block_and_scene(frames=2)
    destination, copies = SPECIAL + 1 * GRID[1] + 1, [SPECIAL + 0, SPECIAL + 8, SPECIAL + 20]
    second = tokens[0, PER_FRAME:]
    second[copies] = 3.0 * second[destination]  # cosine 1 with that destination
    candidates = GRID[0] * GRID[1] - 6
    plan = plan_merge(tokens, 2, SPECIAL, GRID, stride=2, fraction=3 / candidates, keep_first_frame=True)
    assert sorted(plan.sources[0].tolist()) == [PER_FRAME + i for i in copies]
    assert (plan.slot[0, plan.sources[0]] == plan.slot[0, PER_FRAME + destination]).all()


def test_a_single_frame_with_the_first_frame_kept_merges_nothing():
    block, tokens, positions = block_and_scene(frames=1)
    mixer = MergedTokens(1, SPECIAL, GRID, 2, 0.9, keep_first_frame=True)
    torch.testing.assert_close(block(tokens, positions, mixer), block(tokens, positions))


def test_unknown_mode_names_the_choices():
    choices = r"\['exact', 'avggt', 'kv-subsample', 'merge', 'fp8'\]"
    with pytest.raises(ConfigError, match=rf"unknown fast mode 'fastest'; choose one of {choices}"):
        get_fast_mode("fastest")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kv_stride": 0}, "kv_stride must be at least 1"),
        ({"merge_fraction": 1.5}, r"merge_fraction must lie in \[0, 1\]"),
        ({"frame_wise_fraction": -0.1}, r"frame_wise_fraction must lie in \[0, 1\]"),
        ({"kv_stride": 2, "merge_stride": 2, "merge_fraction": 0.5}, "not both"),
    ],
)
def test_impossible_modes_are_refused(fields, message):
    with pytest.raises(ConfigError, match=message):
        FastMode(**fields)


def test_modes_are_named_by_their_preset():
    assert fast_mode_name(get_fast_mode(None)) == "exact"
    assert fast_mode_name(get_fast_mode("merge")) == "merge"
    assert fast_mode_name(FastMode(kv_stride=8)) == "custom"
    assert all(not mode.is_exact for name, mode in FAST_MODES.items() if name != "exact")
