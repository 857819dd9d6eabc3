"""The attention kernel choice (attention_kernels) and FlashAttention-3 against torch's SDPA on the GPU."""

import math

import pytest
import torch

from iggt.errors import InputError
from iggt.model.config import IGGTConfig, get_config
from iggt.model.layers import attention_kernels
from iggt.model.layers.attention import Attention
from iggt.model.layers.attention_kernels import (
    attend,
    attention_backend,
    batched_sdpa,
    fa3_installed,
    select_backend,
)
from iggt.model.layers.rope import RotaryPositionEmbedding2D, grid_positions
from iggt.model.layers.window_attention import OverlappingWindowCrossAttention, WindowSelfAttention

CPU = torch.device("cpu")


def softmax_attention(query, key, value):
    """The definition, in float64: (B, L, heads, D) -> (B, L, heads, D)."""
    q, k, v = (t.double().transpose(1, 2) for t in (query, key, value))
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
    return (weights @ v).transpose(1, 2)


def test_attend_is_softmax_attention_in_the_token_major_layout():
    generator = torch.Generator().manual_seed(0)
    query, key, value = (torch.randn(2, 37, 3, 16, generator=generator) for _ in range(3))
    torch.testing.assert_close(
        attend(query, key, value).double(), softmax_attention(query, key, value), atol=1e-5, rtol=0
    )


def test_attention_module_equals_the_head_major_computation_it_replaced():
    """The (B, N, heads, D) layout must give what the (B, heads, N, D) one gave, RoPE and QK-norm included."""
    torch.manual_seed(0)
    rope = RotaryPositionEmbedding2D(100.0)
    layer = Attention(32, 4, qk_norm=True, rope=rope).eval()
    tokens = torch.randn(2, 1 + 12, 32)
    positions = grid_positions(2, 3, 4, 1, CPU)
    qkv = layer.qkv(tokens).reshape(2, 13, 3, 4, 8).permute(2, 0, 3, 1, 4)
    query, key, value = layer.q_norm(qkv[0]), layer.k_norm(qkv[1]), qkv[2]

    def rope_head_major(x):  # rotate (B, heads, N, D) by moving heads out of the way
        return rope(x.transpose(1, 2), positions).transpose(1, 2)

    expected = torch.nn.functional.scaled_dot_product_attention(rope_head_major(query), rope_head_major(key), value)
    expected = layer.proj(expected.transpose(1, 2).reshape(2, 13, 32))
    with torch.no_grad():
        torch.testing.assert_close(layer(tokens, positions), expected, atol=1e-6, rtol=1e-5)


def test_the_cpu_and_float32_and_gradients_always_get_sdpa():
    assert select_backend(CPU, torch.float32) == "sdpa"
    assert select_backend(CPU, torch.bfloat16) == "sdpa"
    with attention_backend("auto"):
        assert select_backend(CPU, torch.bfloat16, needs_grad=True) == "sdpa"


def test_asking_for_fa3_where_it_cannot_run_says_why():
    with (
        attention_backend("fa3"),
        pytest.raises(
            InputError, match="FlashAttention-3 was asked for but cannot run here: it runs on CUDA GPUs only"
        ),
    ):
        select_backend(CPU, torch.bfloat16)


def test_an_unknown_backend_is_one_line(monkeypatch):
    unknown = r"unknown attention backend 'flash'; choose from \['auto', 'sdpa', 'fa3'\]"
    with pytest.raises(InputError, match=unknown), attention_backend("flash"):
        pass
    monkeypatch.setenv("IGGT_ATTENTION", "cudnn")
    with pytest.raises(InputError, match="unknown attention backend 'cudnn'"):
        select_backend(CPU, torch.float32)


def test_the_environment_sets_the_default_and_the_context_overrides_it(monkeypatch):
    monkeypatch.setenv("IGGT_ATTENTION", "fa3")
    with pytest.raises(InputError, match="asked for"):
        select_backend(CPU, torch.bfloat16)
    with attention_backend("sdpa"):
        assert select_backend(CPU, torch.bfloat16) == "sdpa"


needs_fa3 = pytest.mark.skipif(
    not (torch.cuda.is_available() and torch.cuda.get_device_capability()[0] == 9 and fa3_installed()),
    reason="needs an sm90 GPU with FlashAttention-3 (pip install 'iggt[fa3]')",
)


def trunk_attention_shapes(config: IGGTConfig, frames: int, height: int, width: int) -> dict[str, tuple]:
    """(B, L, heads, D) of every softmax attention call of the trunk for one scene."""
    grid = (height // config.patch_size) * (width // config.patch_size)
    tokens = 1 + config.num_register_tokens + grid
    heads, dim = config.num_heads, config.embed_dim // config.num_heads
    embed_heads = config.patch_embed_num_heads
    return {
        "patch embedding (per frame, no RoPE)": (
            frames,
            1 + config.num_register_tokens + grid,
            embed_heads,
            config.embed_dim // embed_heads,
        ),
        "frame attention": (frames, tokens, heads, dim),
        "global attention": (1, frames * tokens, heads, dim),
    }


FA3_CASES = [
    ("large", 4, 518, 518),
    ("large", 12, 336, 504),
    ("small", 8, 224, 224),
]


@needs_fa3
@pytest.mark.parametrize(("preset", "frames", "height", "width"), FA3_CASES)
def test_fa3_matches_sdpa_within_bf16_tolerance_on_every_trunk_shape(preset, frames, height, width):
    """bf16 kernels differ by their rounding: both are compared with the float64 definition, and
    FA3 must be as close to it as torch's own bf16 kernel (within 2x its error, and 2e-2 absolute)."""
    generator = torch.Generator(device="cuda").manual_seed(0)
    for name, shape in trunk_attention_shapes(get_config(preset), frames, height, width).items():
        query, key, value = (
            torch.randn(shape, device="cuda", generator=generator, dtype=torch.bfloat16) for _ in range(3)
        )
        exact = softmax_attention(query, key, value)
        with attention_backend("sdpa"):
            sdpa_error = (attend(query, key, value).double() - exact).abs().max().item()
        with attention_backend("fa3"):
            assert select_backend(query.device, query.dtype) == "fa3"
            fa3_error = (attend(query, key, value).double() - exact).abs().max().item()
        assert fa3_error <= max(2 * sdpa_error, 1e-3) and fa3_error < 2e-2, (name, fa3_error, sdpa_error)


@needs_fa3
def test_fa3_takes_the_unfused_blocks_views_into_the_qkv_product_without_copies():
    """The patch embedding's q, k and v are strided views of one (B, L, 3, heads, D) product; FA3
    reads them in place and gives what it gives for contiguous copies."""
    generator = torch.Generator(device="cuda").manual_seed(0)
    qkv = torch.randn(3, 1370, 3, 16, 64, device="cuda", generator=generator, dtype=torch.bfloat16)
    views = qkv.unbind(2)
    assert not views[0].is_contiguous()
    with attention_backend("fa3"):
        strided = attend(*views)
        copied = attend(*(view.contiguous() for view in views))
    torch.testing.assert_close(strided, copied, rtol=0, atol=0)
    exact = softmax_attention(*views)
    assert (strided.double() - exact).abs().max().item() < 2e-2


@needs_fa3
def test_the_model_under_fa3_matches_sdpa_within_bf16_tolerance():
    torch.manual_seed(0)
    from iggt.model.iggt import IGGT

    model = IGGT.from_preset("small").cuda().eval()
    images = torch.rand(1, 4, 3, 224, 224, device="cuda")
    outputs = {}
    for backend in ("sdpa", "fa3"):
        with torch.inference_mode(), attention_backend(backend):
            outputs[backend] = model(images, trunk_dtype=torch.bfloat16)
    for key in ("depth", "world_points", "pose_enc"):
        reference = outputs["sdpa"][key].float()
        error = ((outputs["fa3"][key].float() - reference).abs().max() / reference.abs().max()).item()
        assert error < 3e-2, (key, error)
    cosine = (outputs["fa3"]["instance_feat"].float() * outputs["sdpa"]["instance_feat"].float()).sum(-1)
    assert cosine.min().item() > 0.95


@pytest.mark.parametrize("mask", ["none", "per-row float", "per-row bool", "shared"])
def test_batched_sdpa_in_slices_is_one_call(monkeypatch, mask):
    """Above SDPA_MAX_BATCH rows (here 3 of 8) the call runs in slices; outputs and gradients are
    those of one call, with a mask of one row per window sliced along and a shared one broadcast."""
    generator = torch.Generator().manual_seed(1)
    query, key, value = (torch.randn(8, 2, 5, 4, generator=generator, requires_grad=True) for _ in range(3))
    masks = {
        "none": None,
        "per-row float": torch.randn(8, 2, 5, 5, generator=generator),
        "per-row bool": torch.rand(8, 1, 5, 5, generator=generator) > 0.3,
        "shared": torch.randn(1, 2, 5, 5, generator=generator),
    }
    attn_mask = masks[mask]
    if mask == "per-row bool":
        attn_mask[..., 0] = True  # every query keeps a key
    expected = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask)
    expected_grads = torch.autograd.grad(expected.square().sum(), (query, key, value))
    monkeypatch.setattr(attention_kernels, "SDPA_MAX_BATCH", 3)
    rows, sdpa = [], torch.nn.functional.scaled_dot_product_attention

    def counted(query, *args, **kwargs):
        rows.append(query.shape[0])
        return sdpa(query, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counted)
    sliced = batched_sdpa(query, key, value, attn_mask=attn_mask)
    assert rows == [3, 3, 2]
    grads = torch.autograd.grad(sliced.square().sum(), (query, key, value))
    torch.testing.assert_close(sliced, expected, atol=1e-6, rtol=0)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_the_window_attentions_are_unchanged_when_their_windows_run_in_slices(monkeypatch):
    torch.manual_seed(0)
    self_attention = WindowSelfAttention(16, 16, num_heads=2, window_size=4, hidden_channels=8).eval()
    cross_attention = OverlappingWindowCrossAttention(16, 16, num_heads=2, window_size=4, hidden_channels=8).eval()
    maps, context = torch.randn(2, 16, 12, 10), torch.randn(2, 16, 12, 10)  # 2 x 9 windows, the last ones padded
    with torch.no_grad():
        whole = self_attention(maps), cross_attention(maps, context)
        monkeypatch.setattr(attention_kernels, "SDPA_MAX_BATCH", 5)
        sliced = self_attention(maps), cross_attention(maps, context)
    for got, want in zip(sliced, whole, strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
