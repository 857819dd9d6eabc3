"""The instance adaptor's BatchNorm folding (iggt.model.heads.instance_adaptor) against the eager modules.

In inference each residual projection folds its BatchNorms into the convolutions before them and
runs bias, residual and ReLU as one epilogue: the same function as conv -> BN -> ReLU with the
norms' running statistics, to float32 rounding, on the CPU's eager fallback and in Triton's CPU
interpreter (the epilogue kernel's path); on a CUDA GPU also under float16 autocast.
"""

from pathlib import Path

import pytest
import torch
from torch import nn

from iggt.model.heads.instance_adaptor import ConvResidualProjection, InstanceAdaptor, fold_batch_norm
from triton_interpreter import run_interpreted


def _trained_statistics(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm running statistics and an affine transform far from the identity."""
    generator = torch.Generator().manual_seed(seed)
    for norm in module.modules():
        if isinstance(norm, nn.BatchNorm2d):
            shape = norm.running_mean.shape
            norm.running_mean.copy_(torch.randn(shape, generator=generator))
            norm.running_var.copy_(torch.rand(shape, generator=generator) * 3 + 0.1)
            with torch.no_grad():
                norm.weight.copy_(torch.randn(shape, generator=generator))
                norm.bias.copy_(torch.randn(shape, generator=generator))
    return module.eval()


def _eager(projection: ConvResidualProjection, x: torch.Tensor) -> torch.Tensor:
    """The unfolded modules, as training and gradient-recording calls run them."""
    hidden = projection.input_proj(x)
    return projection.output_proj(projection.residual_conv(hidden) + hidden)


@pytest.mark.parametrize("bias", [False, True])
def test_a_folded_convolution_equals_the_convolution_then_its_norm(bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 5, 3, padding=1, bias=bias)
    norm = _trained_statistics(nn.BatchNorm2d(5))
    x = torch.randn(2, 6, 7, 9)
    weight, folded_bias = fold_batch_norm(conv, norm)
    with torch.no_grad():
        folded = nn.functional.conv2d(x, weight, folded_bias, padding=1)
        torch.testing.assert_close(folded, norm(conv(x)), rtol=1e-5, atol=1e-5)


def test_the_folded_projection_matches_the_eager_modules_in_inference():
    torch.manual_seed(0)
    projection = _trained_statistics(ConvResidualProjection(16))
    x = torch.randn(2, 16, 9, 11)
    with torch.no_grad():
        folded = projection(x)
        eager = _eager(projection, x)
    assert (folded - eager).abs().max().item() < 1e-4 * eager.abs().max().item()
    # Training and gradient-recording calls keep the modules (batch statistics, autograd through BN).
    projection.train()
    out = projection(x)
    out.sum().backward()
    assert projection.input_proj[1].weight.grad is not None


TESTS = Path(__file__).parent
INTERPRETED = (
    f"import sys; sys.path[:0] = [{str(TESTS)!r}, {str(TESTS.parent)!r}]\n"
    + r"""
import json, torch
from iggt.model.heads.instance_adaptor import InstanceAdaptor
from test_instance_adaptor import _eager, _trained_statistics
torch.manual_seed(0)
adaptor = _trained_statistics(InstanceAdaptor(64, features=32, patch_size=14))
tokens = [torch.randn(1, 2, 5 + 20, 64) for _ in range(4)]  # 4 x 5 patches after 5 special tokens
images = torch.zeros(1, 2, 3, 56, 70)
report = []
with torch.no_grad():
    folded = adaptor(tokens, images, 5)
    for level, projection in enumerate(stage[-1] for stage in adaptor.resize_layers):
        x = torch.randn(2, 32, 6, 7)
        for layout in (torch.contiguous_format, torch.channels_last):
            x = x.contiguous(memory_format=layout)
            eager = _eager(projection, x)
            report.append({"case": f"level {level} {layout}", "error": (projection(x) - eager).abs().max().item(),
                           "scale": eager.abs().max().item()})
report.append({"case": "levels", "error": 0.0, "scale": 1.0, "shapes": [list(level.shape) for level in folded]})
print(json.dumps(report))
"""
)


def test_the_fused_epilogue_path_matches_the_eager_modules_in_the_interpreter():
    pytest.importorskip("triton")
    report = run_interpreted(INTERPRETED)
    assert len(report) == 4 * 2 + 1
    for row in report:
        assert row["error"] < 1e-4 * row["scale"], row
    assert report[-1]["shapes"] == [[2, 32, 16, 20], [2, 32, 8, 10], [2, 32, 4, 5], [2, 32, 2, 3]]


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_the_adaptor_under_float16_autocast_stays_as_close_to_float32_as_the_eager_modules():
    torch.manual_seed(0)
    adaptor = _trained_statistics(InstanceAdaptor(1024, features=256)).cuda()
    tokens = [torch.randn(1, 3, 5 + 37 * 37, 1024, device="cuda") for _ in range(4)]
    images = torch.zeros(1, 3, 3, 518, 518, device="cuda")
    with torch.inference_mode():
        reference = adaptor(tokens, images, 5)
        with torch.autocast("cuda", dtype=torch.float16):
            folded = adaptor(tokens, images, 5)
    with torch.autocast("cuda", dtype=torch.float16):
        eager = [level.detach() for level in adaptor(tokens, images, 5)]  # gradients recorded: the unfolded modules
    for level in range(4):
        scale = reference[level].abs().mean().item()
        folded_error = (folded[level].float() - reference[level]).abs().mean().item() / scale
        eager_error = (eager[level].float() - reference[level]).abs().mean().item() / scale
        assert folded_error < 1e-2 and folded_error <= 1.5 * eager_error + 1e-4, (level, folded_error, eager_error)
