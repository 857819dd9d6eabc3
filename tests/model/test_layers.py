"""Building blocks: 2D RoPE, the DINOv2 patch embedding, DPT and camera heads, the instance head's sliced MLP and
window attention, the uv embedding."""

import pytest
import torch

from iggt.model.heads.camera_head import CameraHead
from iggt.model.heads.dpt_head import DPTHead
from iggt.model.layers.dinov2 import DinoV2Encoder
from iggt.model.layers.fusion import ResidualConvUnit
from iggt.model.layers.rope import RotaryPositionEmbedding2D, grid_positions


def test_grid_positions_put_special_tokens_at_origin_and_patches_row_major():
    positions = grid_positions(2, 2, 3, num_special=5, device=torch.device("cpu"))
    assert positions.shape == (2, 11, 2)
    assert positions[0, :5].eq(0).all()
    assert positions[0, 5:].tolist() == [[1, 1], [1, 2], [1, 3], [2, 1], [2, 2], [2, 3]]


def test_rope_scores_depend_only_on_relative_position():
    generator = torch.Generator().manual_seed(0)
    rope = RotaryPositionEmbedding2D(100.0)
    query = torch.randn(1, 1, 1, 16, generator=generator, dtype=torch.float64)
    key = torch.randn(1, 1, 1, 16, generator=generator, dtype=torch.float64)

    def score(query_pos, key_pos):
        rotated_q = rope(query, torch.tensor([[query_pos]]))
        rotated_k = rope(key, torch.tensor([[key_pos]]))
        return (rotated_q * rotated_k).sum().item()

    assert abs(score((3, 5), (1, 2)) - score((7, 9), (5, 6))) < 1e-5  # angles are float32
    assert abs(score((3, 5), (1, 2)) - score((3, 5), (2, 1))) > 1e-3  # the axes are not interchangeable
    unrotated = rope(query, torch.zeros(1, 1, 2, dtype=torch.long))
    torch.testing.assert_close(unrotated, query)


def test_dinov2_position_table_is_used_as_is_at_training_size_and_resized_otherwise():
    encoder = DinoV2Encoder(img_size=56, patch_size=14, embed_dim=32, depth=1, num_heads=2)
    assert encoder.position_embedding(4, 4) is encoder.pos_embed
    resized = encoder.position_embedding(2, 6)
    assert resized.shape == (1, 1 + 12, 32)
    torch.testing.assert_close(resized[:, 0], encoder.pos_embed[:, 0])
    tokens = encoder(torch.rand(3, 3, 28, 84))
    assert tokens.shape == (3, 12, 32)
    assert not encoder.mask_token.requires_grad


def test_residual_unit_skip_carries_the_rectified_input():
    unit = ResidualConvUnit(4)
    for conv in (unit.conv1, unit.conv2):
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    x = torch.randn(1, 4, 3, 3)
    torch.testing.assert_close(unit(x), x.relu())


def test_dpt_head_shapes_activations_and_fusion_features():
    head = DPTHead(64, output_dim=4, features=16, out_channels=(8, 16, 32, 32))
    images = torch.rand(2, 3, 3, 28, 42)  # 2 x 3 patch grid
    tokens = [torch.randn(2, 3, 5 + 6, 64) for _ in range(4)]
    points, conf, features = head(tokens, images, patch_start_idx=5, return_features=True)
    assert points.shape == (2, 3, 28, 42, 3) and conf.shape == (2, 3, 28, 42)
    assert conf.min() > 1
    assert [tuple(f.shape) for f in features] == [(6, 16, 8, 12), (6, 16, 4, 6), (6, 16, 2, 3)]
    depth_head = DPTHead(64, output_dim=2, activation="exp", features=16, out_channels=(8, 16, 32, 32))
    depth, _ = depth_head(tokens, images, patch_start_idx=5)
    assert depth.shape == (2, 3, 28, 42, 1) and depth.min() > 0


def test_dpt_feature_only_mode_for_the_tracker():
    head = DPTHead(64, features=16, out_channels=(8, 16, 32, 32), feature_only=True, down_ratio=2, pos_embed=False)
    tokens = [torch.randn(1, 2, 5 + 4, 64) for _ in range(4)]
    features = head(tokens, torch.rand(1, 2, 3, 28, 28), patch_start_idx=5)
    assert features.shape == (1, 2, 16, 14, 14)


def test_camera_head_returns_each_refinement_with_nonnegative_fov():
    head = CameraHead(32, trunk_depth=1, num_heads=2)
    encodings = head(torch.randn(2, 3, 7, 32), iterations=3)
    assert len(encodings) == 3
    assert all(e.shape == (2, 3, 9) for e in encodings)
    assert encodings[-1][..., 7:].min() >= 0
    assert not torch.equal(encodings[0], encodings[1])


def test_feed_forward_runs_in_slices_without_gradients_and_gives_the_one_pass_result(monkeypatch):
    from iggt.model.layers.hat_blocks import FeedForward

    torch.manual_seed(0)
    mlp = FeedForward(8, 32)
    calls = []
    mlp.fc1.register_forward_hook(lambda module, args, out: calls.append(out.shape[0]))
    x = torch.randn(2, 37, 8)
    monkeypatch.setattr(FeedForward, "max_hidden_elements", 32 * 10)  # 10 rows a slice
    whole = mlp(x)  # gradients recorded: one pass (slicing would save nothing for the backward pass)
    assert calls == [2]
    calls.clear()
    with torch.no_grad():
        sliced = mlp(x)
    assert calls == [10] * 7 + [4]
    torch.testing.assert_close(sliced, whole, rtol=1e-6, atol=1e-7)


def test_uv_embedding_is_added_in_place_only_without_gradients():
    from iggt.model.layers.uv_embedding import add_uv_embedding

    x = torch.randn(2, 8, 5, 7)
    expected = add_uv_embedding(x.clone().requires_grad_(), 70, 50).detach()
    with torch.no_grad():
        target = x.clone()
        out = add_uv_embedding(target, 70, 50)
    assert out.data_ptr() == target.data_ptr()
    assert torch.equal(out, expected)
    kept = x.clone().requires_grad_()
    add_uv_embedding(kept, 70, 50)
    assert torch.equal(kept.detach(), x)


@pytest.mark.parametrize("masked", [False, True])
def test_window_attention_in_slices_equals_one_pass(monkeypatch, masked):
    from iggt.model.layers.hat_blocks import WindowMultiHeadAttention

    torch.manual_seed(0)
    attention = WindowMultiHeadAttention(16, num_heads=4).eval()
    windows = torch.randn(11, 9, 16)
    mask = torch.rand(11, 1, 1, 9) > 0.3 if masked else None
    if mask is not None:
        mask[..., 0] = True  # every query keeps a key
    whole = attention(windows, mask)
    monkeypatch.setattr(WindowMultiHeadAttention, "max_qkv_elements", 3 * 9 * 16 * 4)  # 4 windows a slice
    calls = []
    attention.qkv.register_forward_hook(lambda module, args, out: calls.append(out.shape[0]))
    with torch.no_grad():
        sliced = attention(windows, mask)
    assert calls == [4, 4, 3]
    torch.testing.assert_close(sliced, whole, rtol=1e-6, atol=1e-7)
