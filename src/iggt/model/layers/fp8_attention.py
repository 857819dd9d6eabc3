"""Global attention with FP8 (e4m3) queries, keys and values: an opt-in fast mode (``fast_mode="fp8"``).

Each of q, k and v is scaled per (batch entry, head) so that its largest magnitude maps to e4m3's
largest finite value (448), rounded to ``torch.float8_e4m3fn``, and handed to FlashAttention-3 with
the inverse scales (its ``q_descale`` / ``k_descale`` / ``v_descale``, shape (B, heads)). FA3 runs
both matrix products of attention in FP8 on Hopper's tensor cores and returns bfloat16. Per-head
scales matter because the trunk's heads differ in range by orders of magnitude after QK-norm's
gains: one scale for all would leave the small heads a few of e4m3's 3 mantissa bits.

Only FA3 on an sm90 GPU runs it (torch's SDPA takes no FP8 inputs); anywhere else InputError
says so before any work, and a call that needs gradients is refused (FA3 has no backward). Its
accuracy cost is measured in benchmarks/fast_modes.py (docs/performance.md).
"""

from __future__ import annotations

import torch
from torch import Tensor

from iggt.errors import InputError
from iggt.model.layers.attention import Attention
from iggt.model.layers.attention_kernels import fa3_function, fa3_machine_reason

FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = 448.0
"""e4m3's largest finite magnitude."""
_TINY = 2.0**-100
"""Floor of a scale, so that an all-zero head gets a finite one (and quantises to zeros)."""


def quantize_per_head(x: Tensor) -> tuple[Tensor, Tensor]:
    """(B, L, heads, D) -> e4m3 values (B, L, heads, D) and float32 descales (B, heads).

    ``values.float() * descale[:, None, :, None]`` reconstructs ``x``: each (batch entry, head)
    has its own scale, set by its largest magnitude, which maps to 448.
    """
    if x.dim() != 4:
        raise InputError(f"quantize_per_head takes (B, L, heads, D) tensors, got shape {tuple(x.shape)}")
    amax = x.detach().abs().amax(dim=(1, 3)).float()
    descale = (amax / FP8_MAX).clamp_min(_TINY)
    values = (x.float() / descale[:, None, :, None]).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE)
    return values, descale


def dequantize_per_head(values: Tensor, descale: Tensor) -> Tensor:
    """Inverse of :func:`quantize_per_head`: (B, L, heads, D) float32."""
    return values.float() * descale[:, None, :, None]


def check_fp8_runs(device: torch.device | str) -> None:
    """InputError in one line where FP8 attention cannot run on ``device`` (checked before any work)."""
    reason = fa3_machine_reason(torch.device(device))
    if reason is not None:
        raise InputError(
            f"fast mode 'fp8' needs FlashAttention-3, which cannot run here ({reason}); "
            "choose another fast mode (the default, exact, runs anywhere)"
        )


def attend_fp8(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
    """Softmax attention of (B, L, heads, D) inputs in FP8 through FA3 -> (B, L, heads, D) bfloat16."""
    check_fp8_runs(query.device)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value)):
        raise InputError("fast mode 'fp8' serves inference only (FlashAttention-3 has no backward); train exactly")
    (q, q_descale), (k, k_descale), (v, v_descale) = (quantize_per_head(t) for t in (query, key, value))
    return fa3_function()(q, k, v, q_descale=q_descale, k_descale=k_descale, v_descale=v_descale)


class FP8GlobalAttention:
    """Token mixer for :class:`iggt.model.layers.block.Block`: its own attention, with FP8 inputs."""

    def __call__(self, attn: Attention, x: Tensor, positions: Tensor | None) -> Tensor:
        return attn.output(attend_fp8(*attn.heads(x, positions)))
