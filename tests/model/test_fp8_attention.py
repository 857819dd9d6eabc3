"""FP8 global attention (fast mode "fp8"): per-head e4m3 quantisation, where it may run, and on
Hopper with FlashAttention-3, its output against float32 attention."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from iggt.errors import ConfigError, InputError
from iggt.model.fast_mode import FAST_MODES, FastMode
from iggt.model.iggt import IGGT
from iggt.model.layers.attention_kernels import fa3_machine_reason
from iggt.model.layers.fp8_attention import FP8_MAX, attend_fp8, dequantize_per_head, quantize_per_head

E4M3_HALF_STEP = 2.0**-4
"""Half the spacing of e4m3's normal numbers, relative (3 mantissa bits)."""
E4M3_SUBNORMAL_HALF_STEP = 2.0**-10
"""Half the spacing of its subnormals (2**-9), in units of the scale."""


def heads_of_unlike_ranges(seed: int, exponents: list[int]) -> torch.Tensor:
    """(2, 37, heads, 16) normal values, head h scaled by 10**exponents[h]."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 37, len(exponents), 16, generator=generator)
    return x * torch.tensor([10.0**e for e in exponents])[None, None, :, None]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), exponents=st.lists(st.integers(-6, 6), min_size=1, max_size=6))
def test_each_head_keeps_fp8_precision_whatever_its_range(seed, exponents):
    x = heads_of_unlike_ranges(seed, exponents)
    values, descale = quantize_per_head(x)
    assert values.dtype == torch.float8_e4m3fn and descale.shape == (2, len(exponents))
    # Each head's largest magnitude lands on e4m3's largest value ...
    torch.testing.assert_close(values.float().abs().amax(dim=(1, 3)), torch.full_like(descale, FP8_MAX))
    # ... so every element is within half a step of e4m3, relative to itself (or to the scale, below
    # the normal range), whatever the other heads' ranges.
    error = (dequantize_per_head(values, descale) - x).abs()
    bound = E4M3_HALF_STEP * x.abs() + E4M3_SUBNORMAL_HALF_STEP * descale[:, None, :, None]
    assert bool((error <= bound * (1 + 1e-6)).all())


def test_one_heads_range_leaves_the_others_alone():
    x = heads_of_unlike_ranges(0, [0, 0, 0])
    louder = x.clone()
    louder[:, :, 0] *= 1e4
    (values, descale), (louder_values, louder_descale) = quantize_per_head(x), quantize_per_head(louder)
    assert torch.equal(values[:, :, 1:].view(torch.uint8), louder_values[:, :, 1:].view(torch.uint8))
    assert torch.equal(descale[:, 1:], louder_descale[:, 1:])
    torch.testing.assert_close(louder_descale[:, 0], descale[:, 0] * 1e4)


def test_an_all_zero_head_quantises_to_zeros_with_a_finite_scale():
    x = heads_of_unlike_ranges(1, [0, 0])
    x[:, :, 1] = 0
    values, descale = quantize_per_head(x)
    assert bool(torch.isfinite(descale).all()) and bool((descale > 0).all())
    assert not bool(dequantize_per_head(values, descale)[:, :, 1].any())


def test_the_fp8_preset_is_not_exact_and_runs_over_all_tokens():
    assert not FAST_MODES["fp8"].is_exact and FAST_MODES["fp8"].fp8_attention
    with pytest.raises(ConfigError, match="FP8 attention runs over all tokens"):
        FastMode(fp8_attention=True, kv_stride=4)
    with pytest.raises(ConfigError, match="FP8 attention runs over all tokens"):
        FastMode(fp8_attention=True, merge_stride=2, merge_fraction=0.5)


def test_fp8_is_refused_in_one_line_where_fa3_cannot_run():
    model = IGGT.from_preset("tiny").eval()
    with torch.inference_mode(), pytest.raises(InputError, match="fast mode 'fp8' needs FlashAttention-3") as error:
        model(torch.rand(1, 2, 3, 28, 28), fast_mode="fp8")
    assert "\n" not in str(error.value) and "not cpu" in str(error.value)


fa3_runs = pytest.mark.skipif(
    not torch.cuda.is_available() or fa3_machine_reason(torch.device("cuda")) is not None,
    reason="needs FlashAttention-3 on a Hopper GPU",
)


@fa3_runs
def test_fa3_in_fp8_is_float32_attention_within_fp8_tolerance():
    # The trunk's global shape at 4 frames of 518 x 518 (1,374 tokens each), 16 heads of 64, with
    # QK-norm-like unit-scale queries and keys and heads of unlike value ranges.
    generator = torch.Generator(device="cuda").manual_seed(0)
    shape = (1, 4 * 1374, 16, 64)
    query, key = (torch.randn(shape, device="cuda", generator=generator) for _ in range(2))
    value = torch.randn(shape, device="cuda", generator=generator) * torch.logspace(-2, 2, 16, device="cuda")[:, None]
    with torch.inference_mode():
        fp8 = attend_fp8(query, key, value)
        exact = F.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (query, key, value))).transpose(1, 2)
    assert fp8.dtype == torch.bfloat16 and fp8.shape == exact.shape
    fp8 = fp8.float()
    # Per head, relative to that head's output: e4m3 inputs (about 3 % each) and FA3's FP8 P·V.
    error = (fp8 - exact).norm(dim=(1, 3)) / exact.norm(dim=(1, 3))
    print(f"FP8 attention, relative error per head: max {error.max().item():.4f}, mean {error.mean().item():.4f}")
    assert float(error.max()) < 0.08


@fa3_runs
def test_the_model_in_fp8_stays_near_exact_mode():
    torch.manual_seed(0)
    model = IGGT.from_preset("small").cuda().eval()
    images = torch.rand(1, 4, 3, 224, 224, device="cuda")
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        exact, _ = model.aggregator(images)
        fp8, _ = model.aggregator(images, fast_mode="fp8")
    last = max(exact)
    difference = ((fp8[last].float() - exact[last].float()).norm() / exact[last].float().norm()).item()
    print(f"small, 4 x 224 x 224: last trunk output in FP8 differs from exact by {difference:.4f} (relative)")
    assert difference < 0.1
