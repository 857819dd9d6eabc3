"""The bilinear upsampling kernel (iggt.model.layers.fused_upsample) against F.interpolate.

Checked on any machine in Triton's CPU interpreter, on channels-last maps of several sizes (up,
down, odd channel counts, a single-row output) with and without the added map; on a CUDA GPU the
compiled kernel in float32 and bf16.
"""

import pytest
import torch
import torch.nn.functional as F

from iggt.model.layers.fused_upsample import fused_upsample, upsample_applies, upsample_bilinear
from triton_interpreter import run_interpreted

INTERPRETED = r"""
import json, torch
import torch.nn.functional as F
from iggt.model.layers.fused_upsample import upsample_applies, upsample_bilinear
torch.manual_seed(0)
report = []
for (n, c, h, w), size in (((2, 96, 5, 7), (10, 14)), ((1, 130, 6, 9), (11, 23)), ((3, 16, 8, 8), (3, 5)),
                           ((1, 32, 4, 6), (1, 9))):
    x = torch.randn(n, c, h, w).contiguous(memory_format=torch.channels_last)
    add = torch.randn(c, *size)
    expected = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
    for with_add in (False, True):
        out = upsample_bilinear(x, size, add if with_add else None)
        reference = expected + add if with_add else expected
        report.append({"case": f"{(n, c, h, w)} -> {size} add={with_add}",
                       "error": (out - reference).abs().max().item(),
                       "channels_last": out.is_contiguous(memory_format=torch.channels_last),
                       "applies": upsample_applies(x)})
print(json.dumps(report))
"""


def test_upsampling_matches_interpolate_in_the_interpreter():
    pytest.importorskip("triton")
    report = run_interpreted(INTERPRETED)
    assert len(report) == 8
    for row in report:
        assert row["applies"] and row["channels_last"], row
        assert row["error"] < 1e-5, row  # one multiply-add may be contracted


def test_other_inputs_take_interpolate():
    x = torch.randn(2, 8, 4, 5)
    with fused_upsample(True):
        assert not upsample_applies(x)  # the CPU without the interpreter
        assert not upsample_applies(x.contiguous(memory_format=torch.channels_last))
    add = torch.randn(8, 7, 9)
    expected = F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=True) + add
    torch.testing.assert_close(upsample_bilinear(x, (7, 9), add), expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match="added map"):
        upsample_bilinear(x, (7, 9), torch.randn(8, 7, 8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_compiled_upsampling_matches_interpolate_on_the_gpu():
    torch.manual_seed(0)
    # float32: the blend's multiply-adds may be contracted; on an H100 the largest gap was 1.8e-5 of the range
    for dtype, tolerance in ((torch.float32, 5e-5), (torch.bfloat16, 2e-2)):
        # the heads' largest resize (8x grid of 37 patches to 518 x 518) and a refinement step
        for shape, size in (((12, 128, 296, 296), (518, 518)), ((2, 256, 37, 37), (74, 74))):
            x = torch.randn(shape, device="cuda", dtype=dtype).contiguous(memory_format=torch.channels_last)
            add = torch.randn(shape[1], *size, device="cuda", dtype=dtype)
            with torch.inference_mode():
                out = upsample_bilinear(x, size, add)
                expected = F.interpolate(x, size=size, mode="bilinear", align_corners=True) + add
            assert (out - expected).abs().max().item() < tolerance * expected.abs().max().item()
