"""The dense and instance heads' output layers: a 3x3 convolution with ReLU, then the last 1x1 one.

The last convolution and the activations after it (exp-like for depth and confidence, the instance
features' L2 norm) always run in float32. The hidden 3x3 convolution is the costliest layer of a
head (it runs at the full image resolution): under float16 autocast it runs in float16, which keeps
10 mantissa bits as the TF32 tensor cores that the float32 path's convolutions run on do (the model's
overflow check, :meth:`iggt.model.iggt.IGGT.forward`, covers float16's range); under bfloat16 and in
float32 it runs in float32, as a bfloat16 input to it costs 0.4 % relative error in depth and points.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from iggt.model.layers.fused_conv_epilogue import conv2d


def output_convolutions(features: Tensor, hidden: nn.Conv2d, last: nn.Conv2d) -> Tensor:
    """(N, C, H, W) features -> ``last(relu(hidden(features)))``, (N, C_out, H, W) float32."""
    device = features.device.type
    if torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device) == torch.float16:
        hidden_out = conv2d(features, hidden, activation="relu")
    else:
        with torch.autocast(device, enabled=False):
            hidden_out = conv2d(features.float(), hidden, activation="relu")
    with torch.autocast(device, enabled=False):
        return last(hidden_out.float())
