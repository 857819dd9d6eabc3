"""Track head: official key layout, sampling conventions, shapes, symmetries and gradients."""

import math

import pytest
import torch
from torch import nn

from iggt.errors import InputError
from iggt.model.heads.track_head import TrackHead
from iggt.model.heads.track_modules.correlation import CorrelationPyramid
from iggt.model.heads.track_modules.sampling import bilinear_sample, flow_embedding, sample_point_features
from shared_reference import REFERENCE, requires_reference

STATE_DICT_TSV = REFERENCE / "iggt_official_state_dict.tsv"
PATCH_START = 5


def small_track_head() -> TrackHead:
    torch.manual_seed(0)
    return TrackHead(
        48,
        features=16,
        iters=3,
        corr_levels=3,
        corr_radius=2,
        hidden_size=32,
        depth=2,
        num_heads=4,
        num_virtual_tracks=8,
        projection_channels=(8, 16, 16, 16),
    ).eval()


def small_tokens(batch: int, frames: int, height: int, width: int, seed: int = 1) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    patches = (height // 14) * (width // 14)
    return [torch.randn(batch, frames, PATCH_START + patches, 48, generator=generator) for _ in range(4)]


def query_points(batch: int, tracks: int, height: int, width: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(2)
    return torch.rand(batch, tracks, 2, generator=generator) * torch.tensor([width - 1.0, height - 1.0])


@requires_reference
def test_key_names_and_shapes_match_the_official_checkpoint():
    rows = [line.split("\t") for line in STATE_DICT_TSV.read_text().splitlines()[1:]]
    expected = {
        key: tuple(int(n) for n in shape.strip("()").split(",") if n.strip())
        for key, shape, _ in rows
        if key.startswith("track_head.")
    }
    root = nn.Module()
    root.track_head = TrackHead(2048)
    assert {key: tuple(value.shape) for key, value in root.state_dict().items()} == expected


def test_bilinear_sample_reads_pixel_centres_as_column_then_row():
    maps = torch.arange(12.0).view(1, 1, 3, 4)  # value = 4 * row + column
    coords = torch.tensor([[[[3.0, 0.0], [1.0, 2.0], [1.5, 0.5]]]])  # (x, y)
    torch.testing.assert_close(bilinear_sample(maps, coords)[0, 0, 0], torch.tensor([3.0, 9.0, 3.5]))
    points = torch.tensor([[[2.0, 1.0]]])
    torch.testing.assert_close(sample_point_features(maps, points), torch.tensor([[[6.0]]]))


def test_correlation_lookup_is_the_scaled_dot_product_at_the_track_position():
    generator = torch.Generator().manual_seed(0)
    maps = torch.randn(1, 2, 8, 6, 7, generator=generator)
    features = torch.randn(1, 2, 3, 8, generator=generator)
    coords = torch.tensor([[[[1.0, 2.0], [6.0, 0.0], [3.0, 5.0]]] * 2])
    sampled = CorrelationPyramid(maps, levels=1, radius=1).sample(features, coords)
    assert sampled.shape == (1, 2, 3, 9)
    for frame in range(2):
        for track, (x, y) in enumerate(coords[0, frame].long().tolist()):
            expected = features[0, frame, track] @ maps[0, frame, :, y, x] / math.sqrt(8)
            torch.testing.assert_close(sampled[0, frame, track, 4], expected)  # centre of the 3 x 3 lookup


def test_flow_embedding_of_zero_motion_is_sin_zero_cos_one():
    embedding = flow_embedding(torch.zeros(5, 2), 8)
    assert embedding.shape == (5, 16)
    torch.testing.assert_close(embedding[:, 0::2], torch.zeros(5, 8))
    torch.testing.assert_close(embedding[:, 1::2], torch.ones(5, 8))


def test_outputs_have_documented_shapes_and_ranges_and_frame_zero_is_the_query():
    head = small_track_head()
    queries = query_points(2, 5, 112, 84)
    with torch.no_grad():
        track_list, vis, conf = head(small_tokens(2, 3, 112, 84), torch.rand(2, 3, 3, 112, 84), PATCH_START, queries)
    assert len(track_list) == 3
    for tracks in track_list:
        assert tracks.shape == (2, 3, 5, 2) and torch.isfinite(tracks).all()
        torch.testing.assert_close(tracks[:, 0], queries)
    assert vis.shape == conf.shape == (2, 3, 5)
    assert ((vis > 0) & (vis < 1) & (conf > 0) & (conf < 1)).all()


def test_identical_frames_get_identical_tracks():
    """Nothing orders frames 1.. S-1, so a static scene (same tokens in frames 1 and 2) tracks alike."""
    head = small_track_head()
    tokens = [layer[:, [0, 1, 1]] for layer in small_tokens(1, 2, 112, 84)]
    with torch.no_grad():
        track_list, vis, conf = head(tokens, torch.rand(1, 3, 3, 112, 84), PATCH_START, query_points(1, 4, 112, 84))
    torch.testing.assert_close(track_list[-1][:, 1], track_list[-1][:, 2])
    torch.testing.assert_close(vis[:, 1], vis[:, 2])
    torch.testing.assert_close(conf[:, 1], conf[:, 2])


def test_tracks_follow_a_permutation_of_the_queries_and_scenes_stay_independent():
    head = small_track_head()
    tokens, images, queries = (
        small_tokens(2, 3, 112, 84),
        torch.rand(2, 3, 3, 112, 84),
        query_points(2, 6, 112, 84),
    )
    order = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        tracks, vis, _ = head(tokens, images, PATCH_START, queries)
        permuted, permuted_vis, _ = head(tokens, images, PATCH_START, queries[:, order])
        alone, _, _ = head([layer[1:] for layer in tokens], images[1:], PATCH_START, queries[1:])
    torch.testing.assert_close(permuted[-1], tracks[-1][:, :, order], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(permuted_vis, vis[:, :, order], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(alone[-1][0], tracks[-1][1], atol=1e-4, rtol=1e-4)


def test_chunked_feature_extraction_gives_the_same_tracks():
    head = small_track_head()
    tokens, images, queries = (
        small_tokens(1, 3, 112, 84),
        torch.rand(1, 3, 3, 112, 84),
        query_points(1, 4, 112, 84),
    )
    with torch.no_grad():
        whole, _, _ = head(tokens, images, PATCH_START, queries)
        chunked, _, _ = head(tokens, images, PATCH_START, queries, frames_chunk_size=2)
    torch.testing.assert_close(chunked[-1], whole[-1], atol=1e-3, rtol=1e-4)


def test_gradients_reach_every_parameter():
    head = small_track_head().train()
    track_list, vis, conf = head(
        small_tokens(1, 3, 112, 84), torch.rand(1, 3, 3, 112, 84), PATCH_START, query_points(1, 4, 112, 84)
    )
    (track_list[-1].square().mean() + vis.sum() + conf.sum()).backward()
    for name, parameter in head.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


def test_bad_queries_and_too_small_images_are_rejected():
    head = small_track_head()
    tokens, images = small_tokens(1, 2, 14, 14), torch.rand(1, 2, 3, 14, 14)
    with pytest.raises(InputError, match="pass \\(B, N, 2\\)"):
        head(tokens, images, PATCH_START, torch.zeros(1, 4, 3))
    with pytest.raises(InputError, match="at least 8 pixels"):
        head(tokens, torch.rand(1, 2, 3, 14, 7), PATCH_START, torch.zeros(1, 4, 2))
