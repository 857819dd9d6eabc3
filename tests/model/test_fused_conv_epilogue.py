"""The fused convolution epilogues (iggt.model.layers.fused_conv_epilogue) against the eager modules.

Their arithmetic is checked on any machine in Triton's CPU interpreter, where the fused path runs on
CPU tensors: the epilogue alone over both memory layouts, every activation and residual count, and
whole fusion blocks and dense heads, which in float32 must equal eager bit for bit. On a CUDA GPU
the compiled kernels are checked the same way, and the heads under bf16 autocast within rounding.
"""

import pytest
import torch
from torch import nn

from iggt.model.layers.fused_conv_epilogue import conv2d, fused_conv_epilogue, fusion_applies, pointwise_conv2d
from triton_interpreter import run_interpreted

INTERPRETED = r"""
import json, torch
import torch.nn.functional as F
from iggt.model.heads.dpt_head import DPTHead
from iggt.model.layers.fused_conv_epilogue import apply_epilogue, conv2d, fused_conv_epilogue, fusion_applies
from iggt.model.layers.fusion import FeatureFusionBlock
torch.manual_seed(0)
report = []
for channels_last in (False, True):
    for activation in (None, "relu", "leaky_relu"):
        for residual_count in (0, 1, 2):
            # 3 x 96 x 5 x 7 = 10,080 elements: not a multiple of the 1,024-element block
            out = torch.randn(3, 96, 5, 7)
            # NaN and infinities go through as eager takes them (ReLU keeps a NaN, as torch's does)
            out[0, :3, 0, 0] = torch.tensor([float("nan"), float("inf"), -float("inf")])
            if channels_last:
                out = out.contiguous(memory_format=torch.channels_last)
            bias = torch.randn(96)
            residuals = tuple(torch.randn_like(out) for _ in range(residual_count))
            expected = out + bias.view(1, -1, 1, 1)
            for residual in residuals:
                expected = expected + residual
            if activation == "relu":
                expected = F.relu(expected)
            elif activation == "leaky_relu":
                expected = F.leaky_relu(expected, 0.2)
            fused = apply_epilogue(out.clone(), bias, residuals, activation, 0.2)
            finite = torch.isfinite(expected)
            report.append({"case": f"epilogue {channels_last} {activation} {residual_count}",
                           "error": (fused - expected)[finite].abs().max().item(),
                           "specials_kept": torch.equal(fused.isnan(), expected.isnan())
                           and torch.equal(fused[~finite].nan_to_num(), expected[~finite].nan_to_num()),
                           "layout_kept": fused.stride() == out.stride()})
x = torch.randn(2, 32, 9, 11).contiguous(memory_format=torch.channels_last)
conv = torch.nn.Conv2d(32, 32, 3, padding=1)
no_bias = torch.nn.Conv2d(32, 32, 3, padding=1, bias=False)
with torch.no_grad():
    for name, module in (("conv", conv), ("conv without bias", no_bias)):
        skip = conv(x)  # the convolution's own layout and dtype
        fused = conv2d(x, module, (skip,), "relu")
        with fused_conv_epilogue(False):
            eager = conv2d(x, module, (skip,), "relu")
        report.append({"case": name, "error": (fused - eager).abs().max().item(), "layout_kept": True,
                       "tolerance": 1e-5})
    report.append({"case": "applies", "error": 0.0, "layout_kept": fusion_applies(conv(x), (conv(x),))})
    block = FeatureFusionBlock(32)
    coarse, skip = torch.randn(2, 32, 6, 8), torch.randn(2, 32, 6, 8)
    for layout in (torch.contiguous_format, torch.channels_last):
        args = (coarse.contiguous(memory_format=layout), skip.contiguous(memory_format=layout))
        fused = block(*args, size=(12, 16))
        with fused_conv_epilogue(False):
            eager = block(*args, size=(12, 16))
        # the CPU's convolution adds its bias inside its kernel, so rounding may differ there
        report.append({"case": f"fusion block {layout}", "error": (fused - eager).abs().max().item(),
                       "layout_kept": True, "tolerance": 1e-5})
    head = DPTHead(64, patch_size=4, features=32, out_channels=(16, 32, 64, 64)).eval()
    tokens = [torch.randn(1, 2, 1 + 6 * 5, 64) for _ in range(4)]
    images = torch.rand(1, 2, 3, 24, 20)
    fused = head(tokens, images, 1, return_features=True)
    with fused_conv_epilogue(False):
        eager = head(tokens, images, 1, return_features=True)
    errors = [(a - b).abs().max().item() for a, b in zip(fused[:2], eager[:2])]
    errors += [(a - b).abs().max().item() for a, b in zip(fused[2], eager[2])]
    # the 1x1 projections run as matrix products there: equal to the convolutions to float32 rounding
    report.append({"case": "dpt head", "error": max(errors), "layout_kept": True, "tolerance": 1e-4})
print(json.dumps(report))
"""


def test_epilogues_match_the_eager_modules_in_the_interpreter():
    pytest.importorskip("triton")
    report = run_interpreted(INTERPRETED)
    assert len(report) == 18 + 2 + 1 + 2 + 1
    for row in report:
        if row["case"] == "applies":
            assert row["layout_kept"], "the fused path must apply to a channels-last convolution output"
            continue
        assert row["layout_kept"], row
        assert row.get("specials_kept", True), row
        assert row["error"] <= row.get("tolerance", 0.0), row


def test_the_eager_path_runs_on_the_cpu_and_with_gradients():
    conv = nn.Conv2d(8, 8, 3, padding=1)
    x = torch.randn(2, 8, 5, 5)
    skip = torch.randn(2, 8, 5, 5)
    with fused_conv_epilogue(True):
        assert not fusion_applies(conv(x), (skip,))  # the CPU without the interpreter
        out = conv2d(x, conv, (skip,), "relu")
        torch.testing.assert_close(out, torch.relu(conv(x) + skip), rtol=0, atol=0)
        out.sum().backward()
    assert conv.weight.grad is not None
    pointwise = nn.Conv2d(8, 4, 1)
    torch.testing.assert_close(pointwise_conv2d(x, pointwise), pointwise(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="unknown epilogue activation"):
        conv2d(x, conv, (), "gelu")


def test_the_switch_is_on_unless_the_environment_or_context_turn_it_off(monkeypatch):
    from iggt.model.layers.fused_conv_epilogue import SWITCH

    monkeypatch.delenv(SWITCH.env, raising=False)
    assert SWITCH.enabled()
    with fused_conv_epilogue(False):
        assert not SWITCH.enabled()
    monkeypatch.setenv(SWITCH.env, "0")
    assert not SWITCH.enabled()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_compiled_epilogues_match_eager_on_the_gpu():
    from iggt.model.heads.dpt_head import DPTHead
    from iggt.model.heads.instance_head import InstanceHead

    torch.manual_seed(0)
    head = DPTHead(256, patch_size=14, features=64, out_channels=(32, 64, 128, 128)).cuda().eval()
    part = InstanceHead(256, features=64, out_dim=8, legacy_projection_channels=None).cuda().eval()
    tokens = [torch.randn(1, 3, 1 + 24 * 36, 256, device="cuda") for _ in range(4)]
    images = torch.rand(1, 3, 3, 336, 504, device="cuda")
    with torch.inference_mode():
        for dtype in (torch.float32, torch.bfloat16):
            with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
                fused = head(tokens, images, 1, return_features=True)
                with fused_conv_epilogue(False):
                    eager = head(tokens, images, 1, return_features=True)
            # float32: the 1x1 projections as matrix products differ from cuDNN's by TF32 rounding
            tolerance = 2e-2 if dtype == torch.bfloat16 else 5e-3
            for a, b in zip(fused[:2], eager[:2], strict=True):
                assert ((a - b).abs().max() / b.abs().max()).item() < tolerance
            geometry = [g.float() for g in fused[2]]
            adaptor = [torch.randn(3, 64, 24 * s, 36 * s, device="cuda") for s in (4, 2, 1)]
            adaptor.append(torch.randn(3, 64, 12, 18, device="cuda"))
            fused_features = part(adaptor, geometry, images)
            with fused_conv_epilogue(False):
                eager_features = part(adaptor, geometry, images)
            assert (fused_features - eager_features).abs().max().item() < 1e-3
