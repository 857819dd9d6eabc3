"""The instance head's fused token LayerNorms (iggt.model.layers.fused_token_norm) against eager.

Their arithmetic is checked on any machine in Triton's CPU interpreter, where the fused path runs on
CPU tensors: single calls with every branch count over row counts that do not fill a program, and
the window blocks and refiners that call them. On a CUDA GPU the compiled kernels are checked at the
instance head's widths, past int32 offsets, and in the whole instance head.
"""

import pytest
import torch
from torch import nn

from iggt.model.layers.fused_token_norm import (
    add_and_normalize,
    add_then_norm,
    fused_token_norm,
    fusion_applies,
    normalize,
)
from iggt.model.layers.kernel_switch import switch_states
from triton_interpreter import run_interpreted

INTERPRETED = r"""
import json, torch
from torch import nn
from iggt.model.layers.fused_token_norm import add_then_norm, fused_token_norm, fusion_applies, layer_norm
from iggt.model.layers.hat_blocks import HybridAttentionBlock, OverlappingCrossAttentionBlock
from iggt.model.layers.hat_windows import overlapping_window_relative_position_index
from iggt.model.layers.window_attention import OverlappingWindowCrossAttention, WindowSelfAttention
torch.manual_seed(0)
report = []
for dim in (96, 128, 256):  # 96: narrower than its power-of-two block, so masked lanes count
    norm = nn.LayerNorm(dim)
    with torch.no_grad():
        norm.weight.normal_(1.0, 0.3)
        norm.bias.normal_(0.0, 0.2)
    x = 2 + 3 * torch.randn(3, 23, dim)  # 69 rows: no multiple of any program's row count
    y, z = torch.randn(2, 3, 23, dim).unbind(0)
    with torch.no_grad():
        one_sum, one_normed = add_then_norm(x, y, norm)
        two_sum, two_normed = add_then_norm(x, y, norm, z, 0.01)
        no_sum, normed_only = add_then_norm(x, y, norm, z, 0.01, keep_sum=False)
        eager_two = x + y + z * 0.01
        report.append({
            "case": f"dim {dim}",
            "applies": fusion_applies(x, norm, y, z),
            "errors": [
                (layer_norm(x, norm) - norm(x)).abs().max().item(),
                (one_sum - (x + y)).abs().max().item(),
                (one_normed - norm(x + y)).abs().max().item(),
                (two_sum - eager_two).abs().max().item(),
                (two_normed - norm(eager_two)).abs().max().item(),
                (normed_only - norm(eager_two)).abs().max().item(),
            ],
            "sum_dropped": no_sum is None,
        })


def compare(case, run):
    with torch.no_grad():
        fused = run()
        with fused_token_norm(False):
            eager = run()
    report.append({"case": case, "applies": True, "errors": [(fused - eager).abs().max().item()],
                   "sum_dropped": True})


hybrid = HybridAttentionBlock(32, 2, 4, conv_hidden_channels=10, squeezed_channels=2).eval()
cross = OverlappingCrossAttentionBlock(32, 2, 4, reference_query_layout=False).eval()
nn.init.normal_(cross.relative_position_bias_table)
index = overlapping_window_relative_position_index(4, cross.overlap_size)
for height, width in ((8, 12), (6, 9)):  # a multiple of the window, and one that pads and masks
    tokens, context = torch.randn(2, 2, height * width, 32).unbind(0)
    compare(f"hybrid block {height}x{width}", lambda: hybrid(tokens, height, width))
    compare(f"cross block {height}x{width}", lambda: cross(tokens, context, height, width, index))
self_refiner = WindowSelfAttention(32, 16, num_heads=2, window_size=4, hidden_channels=8).eval()
cross_refiner = OverlappingWindowCrossAttention(32, 16, num_heads=2, window_size=4, hidden_channels=8).eval()
grid, context = torch.randn(2, 2, 32, 6, 9).unbind(0)
for layout in (torch.contiguous_format, torch.channels_last):
    g, c = grid.contiguous(memory_format=layout), context.contiguous(memory_format=layout)
    compare(f"self refiner {layout}", lambda: self_refiner(g))
    compare(f"cross refiner {layout}", lambda: cross_refiner(g, c))
print(json.dumps(report))
"""


def test_kernel_arithmetic_matches_the_eager_path_in_the_interpreter():
    pytest.importorskip("triton")
    report = run_interpreted(INTERPRETED)
    assert len(report) == 3 + 4 + 4
    for row in report:
        assert row["applies"], row
        assert row["sum_dropped"], row
        assert all(error < 2e-5 for error in row["errors"]), row


def test_fusion_applies_only_where_it_computes_the_same_thing():
    norm = nn.LayerNorm(16)
    x = torch.zeros(2, 5, 16)
    with torch.no_grad(), fused_token_norm(True):
        assert not fusion_applies(x, norm)  # the CPU without the interpreter
        assert not fusion_applies(x, nn.Identity())
        assert not fusion_applies(x, nn.LayerNorm(16, elementwise_affine=False))


def test_the_eager_path_keeps_the_eager_order_and_gradients():
    torch.manual_seed(0)
    norm = nn.LayerNorm(16)
    x = torch.randn(2, 5, 16, requires_grad=True)
    y, z = torch.randn(2, 2, 5, 16).unbind(0)
    total, normed = add_and_normalize(x, y, norm, z, 0.01)
    torch.testing.assert_close(total, x + y + z * 0.01, rtol=0, atol=0)
    torch.testing.assert_close(normed, norm(x + y + z * 0.01), rtol=0, atol=0)
    torch.testing.assert_close(normalize(x, norm), norm(x), rtol=0, atol=0)
    normed.sum().backward()
    assert x.grad is not None and norm.weight.grad is not None


def test_branches_of_another_shape_are_refused():
    norm = nn.LayerNorm(8)
    with pytest.raises(ValueError, match="differ in shape"):
        add_then_norm(torch.zeros(2, 8), torch.zeros(3, 8), norm)


def test_the_switch_is_on_unless_the_environment_or_context_turn_it_off(monkeypatch):
    from iggt.model.layers.fused_token_norm import SWITCH

    monkeypatch.delenv(SWITCH.env, raising=False)
    assert SWITCH.enabled()
    with fused_token_norm(False):
        assert not SWITCH.enabled()
    monkeypatch.setenv(SWITCH.env, "0")
    assert not SWITCH.enabled()
    assert switch_states()[SWITCH.env] is False  # what the benchmarks record
    with fused_token_norm(True):
        assert SWITCH.enabled()
        assert switch_states()[SWITCH.env] is True


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_compiled_kernels_match_eager_at_the_instance_heads_widths():
    pytest.importorskip("triton")
    torch.manual_seed(0)
    for dim, rows in ((128, 4 * 296 * 296), (256, 4 * 148 * 148 + 3)):
        norm = nn.LayerNorm(dim).cuda()
        with torch.no_grad():
            norm.weight.normal_(1.0, 0.3)
            norm.bias.normal_(0.0, 0.2)
        x, y, z = (torch.randn(rows, dim, device="cuda") for _ in range(3))
        with torch.inference_mode():
            assert fusion_applies(x, norm, y, z)
            total, normed = add_and_normalize(x, y, norm, z, 0.01)
            eager = x + y + z * 0.01
            assert (total - eager).abs().max().item() < 1e-6
            assert (normed - norm(eager)).abs().max().item() < 1e-4
            assert (normalize(x, norm) - norm(x)).abs().max().item() < 1e-4


@cuda
def test_the_kernel_addresses_rows_beyond_int32_offsets():
    pytest.importorskip("triton")
    dim = 128
    rows = 2**31 // dim + 64  # the last rows start past 2 ** 31 elements
    norm = nn.LayerNorm(dim).cuda()
    with torch.inference_mode():
        x = torch.randn(rows, dim, device="cuda")
        normed = normalize(x, norm)
        tail = slice(rows - 256, rows)
        assert (normed[tail] - norm(x[tail])).abs().max().item() < 1e-4
        del normed, x


@cuda
def test_the_instance_head_with_the_kernels_matches_it_without():
    from iggt.model.heads.instance_head import InstanceHead

    torch.manual_seed(0)
    part = InstanceHead(256, features=64, out_dim=8, legacy_projection_channels=None).cuda().eval()
    images = torch.rand(1, 3, 3, 518, 518, device="cuda")  # a 4x grid of 148: padded, masked windows

    def maps(sides):  # channels-last, as the heads' convolutions give them on CUDA
        return [torch.randn(3, 64, side, side, device="cuda").to(memory_format=torch.channels_last) for side in sides]

    adaptor, geometry = maps((148, 74, 37, 19)), maps((148, 74, 37))
    with torch.inference_mode():
        fused = part(adaptor, geometry, images)
        with fused_token_norm(False):
            eager = part(adaptor, geometry, images)
    assert (fused - eager).abs().max().item() < 1e-3
