"""The float32 heads' matrix products on TF32 tensor cores exactly when their convolutions are.

PyTorch runs float32 convolutions on TF32 tensor cores by default (``torch.backends.cudnn.allow_tf32``)
but float32 matrix products in full float32 (``torch.backends.cuda.matmul.allow_tf32``). In the
dense and instance heads both kinds carry the same features, so the strict matrix products (the
instance head's window attention and MLPs) buy no accuracy the convolutions keep: TF32 rounds to
10 mantissa bits, bf16, which the trunk computes in, to 7. :func:`heads_matmuls_like_convolutions`
lets the matrix products follow the convolutions' setting for the enclosed calls; a user who turns
TF32 off for convolutions gets strict float32 for both. ``IGGT_HEADS_TF32=0`` (or
``SWITCH.override(False)``) keeps the products strict, for comparison.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from iggt.model.layers.kernel_switch import KernelSwitch

SWITCH = KernelSwitch("IGGT_HEADS_TF32")


@contextlib.contextmanager
def heads_matmuls_like_convolutions(device: torch.device) -> Iterator[None]:
    """On CUDA with the switch on and TF32 convolutions allowed, allow TF32 matrix products inside."""
    matmul = torch.backends.cuda.matmul
    if device.type != "cuda" or not SWITCH.enabled() or not torch.backends.cudnn.allow_tf32 or matmul.allow_tf32:
        yield
        return
    matmul.allow_tf32 = True
    try:
        yield
    finally:
        matmul.allow_tf32 = False
