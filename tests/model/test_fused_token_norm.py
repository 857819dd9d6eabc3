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

# Patch tokens sliced from (G, P, dim) trunk tokens: rows dense within each group, groups P rows apart.
norm = nn.LayerNorm(96)
with torch.no_grad():
    norm.weight.normal_(1.0, 0.3)
    tokens = 1 + 2 * torch.randn(7, 5 + 23, 96)
    patches = tokens[:, 5:]
    strided = layer_norm(patches, norm)
    report.append({
        "case": "patch tokens",
        "applies": fusion_applies(patches, norm) and not fusion_applies(patches, norm, patches.contiguous())
        and not fusion_applies(tokens.transpose(0, 1), norm) and strided.is_contiguous(),
        "errors": [(strided - norm(patches)).abs().max().item()],
        "sum_dropped": True,
    })

# Mixed operands, as float16 / bfloat16 heads give them: a float32 residual stream with reduced
# branches (or a reduced x with a float32 y), widened exactly; ``z * scale`` rounded to z's dtype
# first, as eager's product on CUDA is (in float32, then rounded; the CPU's bfloat16 product may
# differ by a step). The sums are float32; the normed rows float32, or autocast's dtype
# where they feed only products (then the float32 norm's value rounded once).
norm = nn.LayerNorm(128)
with torch.no_grad():
    norm.weight.normal_(1.0, 0.3)
    norm.bias.normal_(0.0, 0.2)
x = 2 + 3 * torch.randn(3, 23, 128)
y, z = torch.randn(2, 3, 23, 128).unbind(0)
# float16 with a scale whose products round visibly (up to 6e-4 at |z * 0.3| < 1.2), bfloat16 with the hybrid block's.
for dtype, bits, scale in ((torch.float16, 10, 0.3), (torch.bfloat16, 7, 0.01)):
    yr, zr, xr = y.to(dtype), z.to(dtype), x.to(dtype)
    expected = x + yr.float() + (zr.float() * scale).to(dtype).float()  # CUDA's eager product: float32, rounded
    with torch.no_grad():
        total, normed = add_then_norm(x, yr, norm, zr, scale)
        swapped_sum, swapped = add_then_norm(xr, y, norm)
        lone = layer_norm(xr, norm)
        with torch.autocast("cpu", dtype=dtype):
            _, products = add_then_norm(x, yr, norm, zr, scale, keep_sum=False, for_products=True)
            plain = layer_norm(x, norm)  # not for products: float32 under autocast too
        reference = norm(expected)
        # The same float32 value as ``normed``, rounded once (the interpreter truncates bfloat16).
        one_step = (products.float() - normed).abs() / normed.abs().clamp_min(1e-3)
        report.append({
            "case": f"mixed {dtype}",
            "applies": total.dtype == torch.float32 and swapped_sum.dtype == torch.float32
            and normed.dtype == lone.dtype == plain.dtype == torch.float32 and products.dtype == dtype,
            "errors": [
                (total - expected).abs().max().item(),
                (normed - reference).abs().max().item(),
                (swapped_sum - (xr.float() + y)).abs().max().item(),
                (swapped - norm(xr.float() + y)).abs().max().item(),
                (lone - norm(xr.float())).abs().max().item(),
                (plain - norm(x)).abs().max().item(),
                max(0.0, one_step.max().item() - 2.0**-bits),  # within one step of the float32 value
            ],
            "sum_dropped": True,
            # Triton's interpreter truncates float32 -> bfloat16 where the GPU rounds to nearest: one
            # bfloat16 step of ``z * scale`` (|z * 0.01| < 0.06 here) apart from the reference.
            "tolerance": 2e-5 if dtype == torch.float16 else 3e-4,
        })
    # Where eager would not compute in float32 the kernel must stand aside: mixed operands outside
    # CUDA autocast (the CPU's keeps LayerNorm in the input's dtype), two reduced summands.
    with torch.no_grad():
        refused = [fusion_applies(x, norm, yr), fusion_applies(xr, norm), fusion_applies(xr, norm, yr)]
        with torch.autocast("cpu", dtype=dtype):
            refused += [fusion_applies(x, norm, yr), fusion_applies(xr, norm)]
        applies = fusion_applies(x, norm, y, z)
    report.append({"case": f"refusals {dtype}", "applies": applies and not any(refused), "errors": [],
                   "sum_dropped": True})


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
    assert len(report) == 3 + 1 + 2 * 2 + 4 + 4
    for row in report:
        assert row["applies"], row
        assert row["sum_dropped"], row
        assert all(error < row.get("tolerance", 2e-5) for error in row["errors"]), row


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


@cuda
def test_mixed_operands_under_float16_autocast_match_eager():
    pytest.importorskip("triton")
    torch.manual_seed(0)
    norm = nn.LayerNorm(128).cuda()
    with torch.no_grad():
        norm.weight.normal_(1.0, 0.3)
        norm.bias.normal_(0.0, 0.2)
    rows = 4 * 296 * 296
    x = 2 + 3 * torch.randn(rows, 128, device="cuda")
    y, z = (torch.randn(rows, 128, device="cuda", dtype=torch.float16) for _ in range(2))
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16):
        assert fusion_applies(x, norm, y, z) and fusion_applies(y, norm, x) and fusion_applies(y, norm)
        assert not fusion_applies(y, norm, z)  # two float16 summands: eager rounds their sum first
        total, normed = add_and_normalize(x, y, norm, z, 0.01)
        _, products = add_and_normalize(x, y, norm, z, 0.01, keep_sum=False, for_products=True)
        lone = normalize(y, norm, for_products=True)
        with fused_token_norm(False):
            eager_total, eager_normed = add_and_normalize(x, y, norm, z, 0.01)
            eager_lone = normalize(y, norm)
    assert eager_normed.dtype == torch.float32 and products.dtype == lone.dtype == torch.float16
    assert (total - eager_total).abs().max().item() < 1e-5  # the same float32 additions, in the same order
    assert (normed - eager_normed).abs().max().item() < 1e-4
    # Rounded once to float16 as autocast's cast rounds eager's float32 rows: equal but for ties
    # that float32 reassociation moves across a rounding boundary.
    assert (products != eager_normed.half()).float().mean().item() < 1e-3
    assert (lone != eager_lone.half()).float().mean().item() < 1e-3


@cuda
def test_the_instance_head_under_float16_autocast_matches_it_without_the_kernels():
    from iggt.model.heads.instance_head import InstanceHead

    torch.manual_seed(0)
    part = InstanceHead(256, features=64, out_dim=8, legacy_projection_channels=None).cuda().eval()
    images = torch.rand(1, 3, 3, 518, 518, device="cuda")

    def maps(sides):
        return [torch.randn(3, 64, side, side, device="cuda").to(memory_format=torch.channels_last) for side in sides]

    adaptor, geometry = maps((148, 74, 37, 19)), maps((148, 74, 37))
    with torch.inference_mode():
        reference = part(adaptor, geometry, images)
        with torch.autocast("cuda", dtype=torch.float16):
            fused = part(adaptor, geometry, images)
            with fused_token_norm(False):
                eager = part(adaptor, geometry, images)
    fused_error = (fused.float() - reference).abs().mean().item()
    eager_error = (eager.float() - reference).abs().mean().item()
    assert (fused.float() - eager.float()).abs().max().item() < 2e-2
    assert fused_error <= 1.05 * eager_error + 1e-6, (fused_error, eager_error)


@cuda
def test_the_dense_head_and_adaptor_norms_under_float16_autocast_match_them_without_the_kernel():
    from iggt.model.heads.dpt_head import DPTHead
    from iggt.model.heads.instance_adaptor import InstanceAdaptor

    torch.manual_seed(0)
    head = DPTHead(256, patch_size=14, features=64, out_channels=(32, 64, 128, 128)).cuda().eval()
    adaptor = InstanceAdaptor(256, features=64).cuda().eval()
    tokens = [torch.randn(1, 3, 5 + 24 * 36, 256, device="cuda") for _ in range(4)]
    images = torch.rand(1, 3, 3, 336, 504, device="cuda")
    with torch.inference_mode():
        reference = head(tokens, images, 5)[0], adaptor(tokens, images, 5)[0]
        with torch.autocast("cuda", dtype=torch.float16):
            fused = head(tokens, images, 5)[0], adaptor(tokens, images, 5)[0]
            with fused_token_norm(False):
                eager = head(tokens, images, 5)[0], adaptor(tokens, images, 5)[0]
    for name, ref, one, other in zip(("depth head", "adaptor"), reference, fused, eager, strict=True):
        scale = ref.abs().mean().item()
        fused_error = (one.float() - ref).abs().mean().item() / scale
        eager_error = (other.float() - ref).abs().mean().item() / scale
        assert fused_error <= 1.05 * eager_error + 1e-5, (name, fused_error, eager_error)
        assert (one.float() - other.float()).abs().mean().item() < eager_error * scale, name  # within float16 rounding
