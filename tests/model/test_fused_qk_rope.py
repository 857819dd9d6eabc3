"""The fused QK-norm + RoPE kernel (iggt.model.layers.fused_qk_rope) against the eager path.

Its arithmetic is checked on any machine in Triton's CPU interpreter (float32 in and out, so the
interpreter's own bf16 conversion plays no part); where it applies is checked on the CPU; on a CUDA
GPU the compiled kernel is checked in bf16 and inside the trunk's attention.
"""

import pytest
import torch

from iggt.model.layers.attention import Attention
from iggt.model.layers.fused_qk_rope import fused_qk_rope, fusion_applies, qk_norm_rope
from iggt.model.layers.rope import RotaryPositionEmbedding2D, grid_positions
from triton_interpreter import run_interpreted

INTERPRETED = r"""
import json, sys, torch
from iggt.model.layers.attention import Attention
from iggt.model.layers.fused_qk_rope import qk_norm_rope
from iggt.model.layers.rope import RotaryPositionEmbedding2D, grid_positions
torch.manual_seed(0)
report = []
for heads, head_dim, frequency in ((6, 64, 100.0), (4, 32, 10.0), (1, 16, 100.0)):
    attn = Attention(heads * head_dim, heads, qk_norm=True, rope=RotaryPositionEmbedding2D(frequency))
    with torch.no_grad():
        for norm in (attn.q_norm, attn.k_norm):
            norm.weight.normal_(1.0, 0.3)
            norm.bias.normal_(0.0, 0.2)
        positions = grid_positions(2, 3, 5, 5, torch.device("cpu"))
        qkv = attn.qkv(3 * torch.randn(2, positions.shape[1], heads * head_dim))
        eager = attn._split_norm_rotate(qkv, positions)
        fused = qk_norm_rope(qkv, positions, attn.q_norm, attn.k_norm, attn.rope, heads)
    report.append({
        "shape": list(fused[0].shape),
        "contiguous": all(t.is_contiguous() for t in fused),
        "query": (eager[0] - fused[0]).abs().max().item(),
        "key": (eager[1] - fused[1]).abs().max().item(),
        "value_equal": torch.equal(eager[2], fused[2]),
        "scale": eager[0].abs().max().item(),
    })
print(json.dumps(report))
"""


def test_kernel_arithmetic_matches_the_eager_path_in_the_interpreter():
    pytest.importorskip("triton")
    report = run_interpreted(INTERPRETED)
    assert [row["shape"] for row in report] == [[2, 20, 6, 64], [2, 20, 4, 32], [2, 20, 1, 16]]
    for row in report:
        assert row["contiguous"] and row["value_equal"]
        assert row["scale"] > 1.0  # normed and affine: values well above the tolerance below
        assert row["query"] < 1e-5 and row["key"] < 1e-5, row


def test_fusion_applies_only_where_it_computes_the_same_thing():
    attn = Attention(128, 2, qk_norm=True, rope=RotaryPositionEmbedding2D())
    positions = grid_positions(1, 2, 2, 1, torch.device("cpu"))
    qkv = torch.zeros(1, 5, 384, dtype=torch.bfloat16)
    with torch.no_grad():
        assert not fusion_applies(qkv, attn.q_norm, attn.k_norm, attn.rope, positions, 64)  # CPU
    plain = Attention(128, 2, qk_norm=False, rope=RotaryPositionEmbedding2D())
    assert not fusion_applies(qkv, plain.q_norm, plain.k_norm, plain.rope, positions, 64)


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_compiled_kernel_rounds_the_eager_result_to_bf16():
    pytest.importorskip("triton")
    torch.manual_seed(0)
    attn = Attention(1024, 16, qk_norm=True, rope=RotaryPositionEmbedding2D()).cuda()
    with torch.no_grad():
        for norm in (attn.q_norm, attn.k_norm):
            norm.weight.normal_(1.0, 0.3)
            norm.bias.normal_(0.0, 0.2)
    positions = grid_positions(4, 37, 37, 5, torch.device("cuda"))
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        qkv = attn.qkv(torch.randn(4, positions.shape[1], 1024, device="cuda"))
        assert fusion_applies(qkv, attn.q_norm, attn.k_norm, attn.rope, positions, 64)
        eager = attn._split_norm_rotate(qkv, positions)
        fused = qk_norm_rope(qkv, positions, attn.q_norm, attn.k_norm, attn.rope, 16)
    for reference, result in zip(eager[:2], fused[:2], strict=True):
        # Within one bf16 rounding step of the float32 result (half an ulp of rounding plus the two
        # paths' float32 differences, which matter only near zero), and mostly the same bits.
        error = (result.float() - reference).abs()
        bound = reference.abs() * 2**-8 + 1e-5 * reference.abs().max()
        exact = (result == reference.to(torch.bfloat16)).float().mean().item()
        assert (error <= bound).all(), f"worst excess {(error - bound).max().item():.3g}"
        assert exact > 0.99, f"{exact:.4f} of the values have the eager path's bits"
    assert torch.equal(eager[2], fused[2])


@cuda
def test_attention_with_the_kernel_matches_it_without():
    pytest.importorskip("triton")
    torch.manual_seed(0)
    attn = Attention(384, 6, qk_norm=True, rope=RotaryPositionEmbedding2D()).cuda()
    positions = grid_positions(3, 16, 16, 5, torch.device("cuda"))
    x = torch.randn(3, positions.shape[1], 384, device="cuda")
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        with fused_qk_rope(False):
            eager = attn(x, positions).float()
        fused = attn(x, positions).float()
    assert (fused - eager).abs().max() <= 2e-2 * eager.abs().max()
    assert (fused - eager).abs().mean() <= 2e-3 * eager.abs().mean() + 1e-6


@cuda
def test_the_kernel_addresses_tokens_beyond_int32_offsets():
    """1,000 frames at 336 x 504 are 869 k tokens: their qkv offsets pass 2 ** 31 elements (4.4 GB here)."""
    pytest.importorskip("triton")
    torch.manual_seed(0)
    tokens = 2**31 // 3072 + 4096
    attn = Attention(1024, 16, qk_norm=True, rope=RotaryPositionEmbedding2D()).cuda()
    positions = torch.randint(0, 64, (1, tokens, 2), device="cuda")
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        qkv = torch.randn(1, tokens, 3072, device="cuda", dtype=torch.bfloat16)
        fused = qk_norm_rope(qkv, positions, attn.q_norm, attn.k_norm, attn.rope, 16)
        for window in (slice(0, 1024), slice(tokens - 8192, tokens)):  # before and past the int32 limit
            eager = attn._split_norm_rotate(qkv[:, window], positions[:, window])
            for reference, result in zip(eager, fused, strict=True):
                error = (result[:, window].float() - reference.float()).abs()
                assert (error <= reference.float().abs() * 2**-8 + 1e-3).all(), f"tokens {window}"
