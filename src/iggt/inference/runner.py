"""One forward pass of the network over one scene: device placement, precision, frame chunking.

These are decided here, per call, and handed to ``IGGT.forward``; the model's config (its
architecture) is never touched. Precision: the trunk (patch embedding + aggregator) runs under
autocast in ``dtype`` on CUDA, the dense and instance heads in ``head_dtype`` (their output layers
and the camera head in float32); ``dtype="auto"`` picks bfloat16 on GPUs of compute capability
>= 8, float16 on older GPUs and float32 on the CPU; ``head_dtype="auto"`` is float16 on CUDA
and float32 on the CPU (:func:`iggt.device.resolve_head_dtype` says why). The
attention kernel is chosen per call in :mod:`iggt.model.layers.attention_kernels`; the log says which.
``fast_mode`` (default "exact") may approximate the trunk's global attention for long inputs
(:mod:`iggt.model.fast_mode`); the log says which mode ran.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from tqdm.auto import tqdm

from iggt.device import dtype_name, resolve_device, resolve_dtype, resolve_head_dtype
from iggt.errors import CheckpointError, InputError
from iggt.model.fast_mode import FastMode, fast_mode_name, get_fast_mode
from iggt.model.layers.attention_kernels import select_backend
from iggt.structures.predictions import Predictions

logger = logging.getLogger(__name__)

MEMORY_ERROR_MARKERS = ("can't allocate memory", "not enough memory", "out of memory", "ALLOC_FAILED")
HEAD_CHUNK_PIXELS = 24 * 336 * 504
"""Pixels the dense and instance heads see in one pass unless the caller says otherwise (4.06 M: 24
frames at 336 x 504, 15 at 518 x 518). The heads' working set grows with the pixels of a pass, so a
pixel budget keeps it bounded at every resolution; the output never depends on it. Fewer, larger
passes are faster (docs/performance.md: 48 frames at 336 x 504 in two passes rather than four of 12)."""


def max_head_chunk(height: int, width: int) -> int:
    """Most frames of ``height`` x ``width`` one head pass takes by default (:data:`HEAD_CHUNK_PIXELS`)."""
    return max(1, HEAD_CHUNK_PIXELS // (height * width))


def head_chunk_size(frames: int, height: int, width: int) -> int:
    """Default frames per head pass for ``frames`` frames of ``height`` x ``width``: as few passes as
    :func:`max_head_chunk` allows, split evenly (30 frames at 336 x 504: two of 15, not 24 and 6), so
    that the peak is no higher than the passes need."""
    passes = -(-frames // max_head_chunk(height, width))
    return max(1, -(-frames // passes))


def check_chunk_size(chunk_size: int) -> int:
    """``chunk_size`` as an int, or InputError when it is below one frame."""
    if chunk_size < 1:
        raise InputError(f"--chunk must be at least 1 frame, got {chunk_size}")
    return int(chunk_size)


def store_weights_for_inference(model, device: str | torch.device, trunk_dtype: torch.dtype) -> int:
    """Hold a loaded model's trunk weights in the trunk's autocast dtype where it runs under autocast
    (CUDA, bf16 or fp16): the same outputs from half the weight memory (:meth:`IGGT.store_trunk_weights`).

    For models this package loaded itself (``reconstruct`` and ``iggt eval`` given a name or path); a
    module the caller passes in keeps its weights as they are. Returns the bytes freed.
    """
    target = torch.device(device)
    if target.type != "cuda" or trunk_dtype == torch.float32 or not hasattr(model, "store_trunk_weights"):
        return 0
    freed = model.store_trunk_weights(trunk_dtype)
    logger.info("trunk weights held in %s for inference (%.2f GB less)", dtype_name(trunk_dtype), freed / 1e9)
    return freed


def run_model(
    model,
    images: torch.Tensor,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
    chunk_size: int | None = None,
    progress: bool = False,
    head_dtype: str | torch.dtype = "auto",
    fast_mode: str | FastMode | None = None,
) -> Predictions:
    """Run ``model`` on one scene.

    Args:
        model: an :class:`iggt.IGGT`; it is moved to ``device`` and put in eval mode.
        images: (S, 3, H, W) float RGB in [0, 1]; H and W multiples of the patch size.
        device: "auto", "cpu", "cuda" or "cuda:N" (:func:`iggt.device.resolve_device`).
        dtype: trunk precision, "auto" or a name in ``iggt.device.DTYPES``.
        head_dtype: precision of the dense and instance heads; "auto" is float16 on CUDA (a pass that
            overflows is recomputed in float32), float32 on the CPU.
        chunk_size: frames per pass of the dense heads (None: :func:`head_chunk_size`). Lower it
            when memory runs out; outputs do not change.
        progress: show a progress bar of the forward pass (blocks and heads done) on stderr.
        fast_mode: a preset name of :data:`iggt.model.fast_mode.FAST_MODES` or a FastMode; None is
            "exact". The others approximate the trunk's global attention (faster on long inputs).

    Returns:
        Predictions at the network resolution (H x W).
    """
    _check_scene(images)
    frames, _, height, width = images.shape
    chunk = head_chunk_size(frames, height, width) if chunk_size is None else check_chunk_size(chunk_size)
    target = resolve_device(device)
    compute_dtype = resolve_dtype(dtype, target)
    heads_dtype = resolve_head_dtype(head_dtype, target)
    mode = get_fast_mode(fast_mode)
    logger.info(
        "network on %s: trunk %s, heads %s, attention %s, %s mode",
        target,
        dtype_name(compute_dtype),
        dtype_name(heads_dtype),
        attention_backend_name(model, target, compute_dtype),
        fast_mode_name(mode),
    )
    model.to(target).eval()
    try:
        with torch.inference_mode(), _forward_progress(model, images.shape[0], chunk, progress):
            # Floats become float32; any other dtype reaches the model's own check unchanged.
            batch = images.to(target, torch.float32 if images.is_floating_point() else None)[None]
            output = model(
                batch, frames_chunk_size=chunk, trunk_dtype=compute_dtype, head_dtype=heads_dtype, fast_mode=mode
            )
    except torch.OutOfMemoryError as exc:
        if target.type == "cuda":
            torch.cuda.empty_cache()
        raise _out_of_memory(images, target) from exc
    except RuntimeError as exc:
        # The CPU allocator and cuBLAS report exhaustion as plain RuntimeErrors.
        if not any(marker in str(exc) for marker in MEMORY_ERROR_MARKERS):
            raise
        raise _out_of_memory(images, target) from exc
    _check_finite_outputs(output)
    return Predictions.from_model_output(output)


def attention_backend_name(model, device: torch.device, trunk_dtype: torch.dtype) -> str:
    """The kernel ``model``'s trunk attention runs on for these settings ("fa3" or "sdpa")."""
    compute = trunk_dtype if device.type == "cuda" else torch.float32  # no autocast on the CPU
    return select_backend(device, compute, head_dim=model.config.embed_dim // model.config.num_heads)


# Outputs every later stage reads, and how a user knows them.
CHECKED_OUTPUTS = {"depth": "depth", "pose_enc": "camera", "world_points": "point", "instance_feat": "instance feature"}


def _check_finite_outputs(output: dict[str, torch.Tensor]) -> None:
    """CheckpointError naming the first output holding NaN or infinity: nothing downstream is meaningful then."""
    for key, what in CHECKED_OUTPUTS.items():
        finite = torch.isfinite(output[key])
        if not bool(finite.all()):
            raise CheckpointError(
                f"the network's {what} output is not finite ({int((~finite).sum())} of {finite.numel()} values "
                "NaN or inf): its weights are broken; reload them from a good file or re-train"
            )


# Top-level modules called once per chunk of frames (see IGGT._dense_chunk).
PER_CHUNK_MODULES = ("depth_head", "point_head", "part_adaptor", "part_head")


@contextmanager
def _forward_progress(model, frames: int, chunk_size: int, enabled: bool) -> Iterator[tqdm | None]:
    """A progress bar (yielded; None when disabled) advanced by forward hooks on the trunk's
    blocks and on the heads, which run once per ``chunk_size`` frames."""
    if not enabled:
        yield None
        return
    aggregator = getattr(model, "aggregator", None)
    blocks = [*getattr(aggregator, "frame_blocks", ()), *getattr(aggregator, "global_blocks", ())]
    once = [m for m in (getattr(aggregator, "patch_embed", None), getattr(model, "camera_head", None)) if m]
    per_chunk = [m for m in (getattr(model, name, None) for name in PER_CHUNK_MODULES) if m is not None]
    chunks = math.ceil(frames / chunk_size)
    bar = tqdm(
        total=len(blocks) + len(once) + len(per_chunk) * chunks,
        desc="running the network",
        unit="step",
        leave=False,
    )

    def advance(*_) -> None:  # a forward hook returning a value would replace the module's output
        bar.update(1)

    handles = [m.register_forward_hook(advance) for m in (*blocks, *once, *per_chunk)]
    try:
        yield bar
    finally:
        for handle in handles:
            handle.remove()
        bar.close()


def _check_scene(images: torch.Tensor) -> None:
    """What only the runner asks of its input: one scene (it adds the batch axis) of finite values
    (else a broken output would be blamed on the weights). IGGT.forward checks the network's own
    rules: three channels, floats, sides on the patch grid."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
        raise InputError(f"images must be a (S, 3, H, W) tensor, got {shape}")
    finite = torch.isfinite(images)
    if not bool(finite.all()):
        raise InputError(
            f"images hold {int((~finite).sum())} non-finite value(s) (NaN or inf); pass RGB values in [0, 1]"
        )


def _out_of_memory(images: torch.Tensor, device: torch.device) -> InputError:
    frames, _, height, width = images.shape
    where = "GPU" if device.type == "cuda" else "CPU"
    return InputError(
        f"out of {where} memory running {frames} frames at {height}x{width} on {device}; "
        "try --chunk 2 (fewer frames per head pass) or --max-frames with fewer frames"
    )
