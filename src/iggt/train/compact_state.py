"""A compact AdamW state for transfer checkpoints: second moments in 4 bits, first moments dropped.

A transfer checkpoint must cross machines in a few files of at most 16 MB. For `small` (21.3 M
parameters) the full AdamW state is 170 MB (two float32 moments); compacted it is 12 MB:

- ``exp_avg_sq`` (v) is kept as r = sqrt(v) in blocks of :data:`BLOCK` values, each block as one
  float32 scale s = max(r) / 15 and 4-bit codes ceil(r / s), two to a byte. Rounding up means
  the restored r' >= r (within float rounding) and r' - r <= s: every restored step
  m / (sqrt(v') + eps) is at most the true one, so a resume never takes a larger step than the
  uninterrupted run would. v is the moment worth keeping: with beta2 = 0.999 it takes thousands
  of steps to rebuild.
- ``exp_avg`` (m) is dropped and restored as zeros: with beta1 = 0.9 it rebuilds in tens of
  steps, during which the updates are smaller (an implicit short warm-up).
- the step counts, the parameter groups and everything outside the optimiser (scheduler, RNG
  states, data positions) stay exact.
"""

from __future__ import annotations

import math

import torch

from iggt.errors import CheckpointError

BLOCK = 64
FORMAT = "adamw-v-sqrt-4bit"
LEVELS = 15


def quantize_sqrt(values: torch.Tensor) -> dict:
    """Non-negative ``values`` (any shape) -> {"codes": uint8 (ceil(N/2),), "scales": float32
    (ceil(N/BLOCK),), "shape"} holding sqrt(values) rounded up to 4 bits per block."""
    root = values.detach().float().flatten().clamp(min=0).sqrt()
    count = root.numel()
    padded = torch.zeros(math.ceil(count / BLOCK) * BLOCK)
    padded[:count] = root.cpu()
    blocks = padded.view(-1, BLOCK)
    scales = blocks.amax(dim=1) / LEVELS
    safe = torch.where(scales > 0, scales, 1.0)[:, None]
    codes = torch.ceil(blocks / safe).clamp(0, LEVELS).to(torch.uint8).flatten()[:count]
    if count % 2:
        codes = torch.cat([codes, codes.new_zeros(1)])
    packed = codes[0::2] | (codes[1::2] << 4)
    return {"codes": packed, "scales": scales, "shape": list(values.shape)}


def dequantize_sqrt(packed: dict) -> torch.Tensor:
    """Inverse of :func:`quantize_sqrt`: the squared restored roots, float32, the original shape."""
    codes = torch.stack([packed["codes"] & 0x0F, packed["codes"] >> 4], dim=1).flatten()
    count = math.prod(packed["shape"])
    codes = codes[:count].float()
    scales = packed["scales"].repeat_interleave(BLOCK)[:count]
    return (codes * scales).square().view(packed["shape"])


def compact_optimizer_state(optimizer_state: dict) -> dict:
    """An AdamW ``state_dict()`` (plain: keyed by index, or FSDP: keyed by name) in compact form."""
    compact = {}
    for key, entry in optimizer_state["state"].items():
        kept = {name: value for name, value in entry.items() if name not in ("exp_avg", "exp_avg_sq")}
        if "exp_avg_sq" in entry:
            kept["exp_avg_sq_sqrt4"] = quantize_sqrt(entry["exp_avg_sq"])
            kept["exp_avg_dtype"] = str(entry["exp_avg"].dtype).removeprefix("torch.")
        compact[key] = kept
    return {"format": FORMAT, "state": compact, "param_groups": optimizer_state["param_groups"]}


def is_compact(optimizer_state: dict) -> bool:
    return optimizer_state.get("format") == FORMAT


def expand_optimizer_state(optimizer_state: dict) -> dict:
    """A compact state back in ``state_dict()`` form: v restored from its 4-bit roots, m zeros."""
    if not is_compact(optimizer_state):
        raise CheckpointError(f"optimiser state is not in the {FORMAT} format; it cannot be expanded")
    state = {}
    for key, entry in optimizer_state["state"].items():
        restored = {name: value for name, value in entry.items() if name not in ("exp_avg_sq_sqrt4", "exp_avg_dtype")}
        if "exp_avg_sq_sqrt4" in entry:
            dtype = getattr(torch, entry["exp_avg_dtype"])
            second = dequantize_sqrt(entry["exp_avg_sq_sqrt4"]).to(dtype)
            restored["exp_avg_sq"] = second
            restored["exp_avg"] = torch.zeros_like(second)
        state[key] = restored
    return {"state": state, "param_groups": optimizer_state["param_groups"]}
