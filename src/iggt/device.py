"""Where and in which precision a stage computes: one device rule and one dtype vocabulary.

Reconstruct, eval, instance extraction, training and the scene engine all resolve their
``--device`` / ``--dtype`` (and ``train.device`` / ``train.precision``) here, so "auto" picks the
same device in every stage and a device this machine lacks is one :class:`InputError` line.

Devices: "auto" (the first CUDA GPU when one is visible, else the CPU), "cpu", "cuda", "cuda:N".
Dtypes: "auto", "float32" / "fp32", "bfloat16" / "bf16", "float16" / "fp16" (or a torch.dtype).
"""

from __future__ import annotations

import torch

from iggt.errors import InputError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}
"""Every accepted dtype spelling; the long one (the torch attribute name) is canonical."""
DTYPE_NAMES: dict[torch.dtype, str] = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


def parse_device(spec: str | torch.device) -> torch.device | None:
    """The device named by ``spec`` without looking at the hardware; None for "auto"."""
    if str(spec) == "auto":
        return None
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"unknown device {spec!r}; use {DEVICE_CHOICES}") from exc
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"device {spec!r} is not supported; use {DEVICE_CHOICES}")
    return device


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """The torch device for ``spec``; InputError when it names a GPU this machine does not have."""
    device = parse_device(spec)
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {str(spec)!r} asked for but no CUDA GPU is visible; use --device cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            last = f"cuda:{count - 1}"
            raise InputError(f"device {str(spec)!r} does not exist: {count} GPU(s) visible; use cuda:0 to {last}")
    return device


def parse_dtype(spec: str | torch.dtype) -> torch.dtype | None:
    """The dtype named by ``spec`` (any spelling in ``DTYPES``) without looking at a device; None for "auto"."""
    if isinstance(spec, torch.dtype):
        if spec not in DTYPE_NAMES:
            raise InputError(f"dtype {spec} is not supported; use float32, bfloat16 or float16")
        return spec
    if spec == "auto":
        return None
    if spec not in DTYPES:
        raise InputError(f"unknown dtype {spec!r}; use auto, float32 (fp32), bfloat16 (bf16) or float16 (fp16)")
    return DTYPES[spec]


def resolve_dtype(spec: str | torch.dtype, device: torch.device) -> torch.dtype:
    """The network trunk's compute dtype on ``device``.

    "auto" -> bfloat16 on GPUs of compute capability >= 8, float16 on older GPUs, float32 on the
    CPU. A reduced precision asked for on the CPU is an InputError: the network autocasts its trunk
    on CUDA only, so on the CPU it would silently compute in float32 anyway.
    """
    dtype = parse_dtype(spec)
    if dtype is None:
        if device.type != "cuda":
            return torch.float32
        major, _ = torch.cuda.get_device_capability(device)
        return torch.bfloat16 if major >= 8 else torch.float16
    if device.type != "cuda" and dtype != torch.float32:
        raise InputError(f"dtype {dtype_name(dtype)!r} needs a CUDA device; on the CPU use --dtype float32 (or auto)")
    return dtype


def resolve_head_dtype(spec: str | torch.dtype, device: torch.device) -> torch.dtype:
    """The dense and instance heads' autocast dtype: "auto" is float16 on CUDA and float32 on the
    CPU, anything else as :func:`resolve_dtype` reads it.

    float16 keeps 10 mantissa bits, as the TF32 tensor cores that float32 heads run their convolutions
    and products on do: against the official float32 outputs on the parity weights it is as close as
    float32 heads (depth 4.5e-3 against 4.7e-3), no metric of ``iggt eval`` with the shipped model moved
    beyond its interval, and it saves 5-13 % of the forward and 1-3 GB (docs/performance.md, H100). A
    head pass that leaves float16's range (65,504) runs again in float32 (:meth:`iggt.model.iggt.IGGT.forward`).
    bfloat16 heads (7 mantissa bits) raise the error from 4e-3 to 2e-2 in depth and points, so they stay
    opt-in (``--head-dtype bfloat16``); ``--head-dtype float32`` gives the float32 heads.
    """
    if parse_dtype(spec) is None:
        return torch.float16 if device.type == "cuda" else torch.float32
    return resolve_dtype(spec, device)


def dtype_name(dtype: torch.dtype) -> str:
    """The canonical name of ``dtype`` ("float32", "bfloat16" or "float16")."""
    return DTYPE_NAMES[dtype]
