"""A transformer MLP's first product with its GELU in the product's epilogue (cuBLASLt), for CUDA inference.

Eager, ``fc1`` writes the (tokens, 4 * dim) hidden layer and ``GELU`` reads it and writes it again: at
100 frames at 518 x 518 that pass is 60 ms of the trunk's 4.09 s on an H100 (72 calls over 137 k x 4,096
bf16 values; benchmarks/results/forward_profile_h100_fa3_trunk_kernels.json). cuBLASLt can apply the
activation while the product's tile is still in registers (``torch._addmm_activation``, the op PyTorch's
own compiler emits for a linear followed by a GELU), which removes that pass.

Its GELU is the tanh approximation, not the exact (erf) GELU the weights were trained with. The two
differ by at most 4.7e-4 (at x = 2.70, where a bf16 step is 1.6e-2): a thirtieth of the rounding the
bf16 hidden layer gets anyway, so the result stays within the exact mode's bf16 tolerance. It runs
only where the product is computed in bf16 or fp16 anyway (:func:`epilogue_dtype`): CUDA, no gradient
to record, bf16 / fp16 autocast or inputs: the trunk's MLPs, and the instance head's window blocks'
under float16 / bfloat16 heads (there a float16 step at 2.70 is 2.0e-3, four times the difference).
Float32 MLPs (float32 heads) and training keep the exact GELU.

On by default; ``IGGT_GELU_EPILOGUE=0`` or :func:`gelu_epilogue` (False) keeps eager's two passes.
Measured on an H100 (2026-12-07, docs/performance.md): the trunk at 100 x 518 x 518 4.102 -> 4.049 s
(the GELU kernel's 60 ms gone, the product 14 ms slower), the error against the official float32
outputs unchanged (benchmarks/results/precision_cost_h100_gelu_epilogue.json).
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

from iggt.model.layers.kernel_switch import KernelSwitch, compute_dtype

EPILOGUE_DTYPES = (torch.bfloat16, torch.float16)

SWITCH = KernelSwitch("IGGT_GELU_EPILOGUE")


def gelu_epilogue(enabled: bool) -> contextlib.AbstractContextManager[None]:
    """Allow (True) or forbid (False) the GELU epilogue for the enclosed calls."""
    return SWITCH.override(enabled)


def epilogue_dtype(x: Tensor, linear: nn.Linear) -> torch.dtype | None:
    """The dtype ``linear(x)`` computes in if it can take GELU in its epilogue here, else None (eager)."""
    if x.device.type != "cuda" or linear.bias is None or not SWITCH.enabled():
        return None
    if torch.is_grad_enabled() and (x.requires_grad or linear.weight.requires_grad):
        return None
    dtype = compute_dtype(x)
    if dtype not in EPILOGUE_DTYPES or (not torch.is_autocast_enabled("cuda") and linear.weight.dtype != dtype):
        return None
    return dtype


def linear_gelu(x: Tensor, linear: nn.Linear, dtype: torch.dtype) -> Tensor:
    """``gelu(linear(x))`` in ``dtype``, the activation applied by the product: (..., in) -> (..., out).

    Inputs and weights are rounded to ``dtype`` as autocast rounds them (a no-op for weights stored in
    it, :meth:`iggt.model.iggt.IGGT.store_trunk_weights`). On CUDA the GELU is the tanh approximation
    (cuBLASLt's, and PyTorch's where cuBLASLt declines the shape); on the CPU PyTorch applies the exact one.
    """
    rows = x.reshape(-1, x.shape[-1]).to(dtype)
    hidden = torch._addmm_activation(linear.bias.to(dtype), rows, linear.weight.to(dtype).t(), use_gelu=True)
    return hidden.reshape(*x.shape[:-1], hidden.shape[-1])
