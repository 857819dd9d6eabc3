"""The heads' output layers (output_convolutions) under each autocast dtype."""

import copy

import pytest
import torch
from torch import nn

from iggt.model.layers.output_convolutions import output_convolutions

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def output_layers(device: str) -> tuple[nn.Conv2d, nn.Conv2d]:
    torch.manual_seed(0)
    return nn.Conv2d(16, 8, 3, padding=1).to(device), nn.Conv2d(8, 2, 1).to(device)


def test_bfloat16_never_reaches_the_output_layers():
    """Under bf16 autocast both convolutions run in float32: the result is the float32 one, bit for bit."""
    hidden, last = output_layers("cpu")
    features = torch.randn(2, 16, 12, 10)
    with torch.inference_mode():
        reference = output_convolutions(features, hidden, last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            under_autocast = output_convolutions(features, hidden, last)
            rounded = hidden(features)  # what autocast does to a convolution outside them
    assert under_autocast.dtype == torch.float32
    torch.testing.assert_close(under_autocast, reference, rtol=0, atol=0)
    assert rounded.dtype == torch.bfloat16


@needs_cuda
def test_under_float16_the_hidden_convolution_runs_in_float16_and_the_last_in_float32():
    hidden, last = output_layers("cuda")
    features = torch.randn(2, 16, 24, 20, device="cuda")
    with torch.inference_mode():
        exact = copy.deepcopy(last).double()(torch.relu(copy.deepcopy(hidden).double()(features.double())))
        with torch.autocast("cuda", dtype=torch.float16):
            half = output_convolutions(features, hidden, last)
    assert half.dtype == torch.float32
    error = ((half.double() - exact).abs().max() / exact.abs().max()).item()
    assert 1e-5 < error < 5e-3, error  # float16's rounding shows, and stays within its 10 bits
