"""The automatic window: how many frames one network pass may hold on this device's free memory.

When ``window`` is not given and the whole input does not fit in one pass, :func:`choose_window`
picks K (and M) from a per-frame memory model of the preset (:data:`FRAME_MEMORY`), measured by
``benchmarks/long_capture.py`` and ``benchmarks/largest_pass.py``: the fewest windows of at most the
largest K that fits, all of one size (:func:`balanced_window`), so that no pass is wasted on a last
window moved back over frames already seen (1,000 frames where 919 fit: two windows of 502, not of
919). A pass of K frames of P network pixels needs, beyond the weights,

    P * (K * per_frame + min(K, chunk) * per_chunk_frame)

bytes on the device (activations, outputs, clustering; the dense heads' working set grows with
the chunk of frames they see at once, not with K). On the CPU the device is the host, which also
holds the capture's result, P * result bytes for each of the S frames, so there the result's
share is set aside first. Only a fraction (:data:`USABLE_FRACTION`) of the free memory is planned
for: the model is a fit, and other processes allocate too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from iggt.errors import InputError
from iggt.inference.windows import DEFAULT_OVERLAP, MIN_OVERLAP

USABLE_FRACTION = 0.7
"""Share of the free memory a windowed run plans to use."""
MIN_WINDOW = 3 * MIN_OVERLAP
"""Fewest frames of an automatic window: with MIN_OVERLAP shared, each adds at least 4 new frames."""


@dataclass(frozen=True)
class FrameMemory:
    """Bytes per network pixel of one preset (measured; see the module doc).

    Attributes:
        per_frame: bytes per pixel of each frame of a pass (trunk tokens, heads' outputs, clustering).
        per_chunk_frame: bytes per pixel of each frame the dense heads see at once.
        result: host bytes per pixel of each frame of the capture's result (predictions, labels,
            the linking's final pass).
    """

    per_frame: float
    per_chunk_frame: float
    result: float


FRAME_MEMORY = {
    # large: benchmarks/results/largest_pass_h100.json (bf16 trunk and its weights, float32 heads,
    # chunks of 12). Up to a few hundred frames the peak is in the heads; beyond, in the trunk, where
    # it grows 55.4 MB a frame at 336 x 504 (500 -> 1,000 frames: 30.9 -> 58.6 GB allocated), i.e.
    # 327 B/px; the heads' chunk takes up to 2,680 B/px a frame (518 x 518: 11.7 GB at no frames, of
    # which 3.1 GB are the weights). The fraction left unplanned covers the allocator's fragmentation
    # (reserved / allocated 1.22 at 1,000 frames).
    "large": FrameMemory(per_frame=330.0, per_chunk_frame=2680.0, result=95.0),
    # small: one pass of iggt-small on the CPU at 168 x 224 grew 198 B/px a frame (32 -> 64
    # frames, long_capture_cpu.json of 2026-12-02 00:52); the result and the linking take 94 of
    # them (long_capture_standin_cpu.json); per_chunk_frame is an allowance, not measured.
    "small": FrameMemory(per_frame=110.0, per_chunk_frame=400.0, result=95.0),
}
"""Per preset, named by its ``embed_dim`` in :data:`PRESET_BY_WIDTH`; the result's 95 B/px is the
host's, measured on the CPU (the same code holds it on any device)."""
PRESET_BY_WIDTH = {1024: "large", 256: "small"}


@dataclass(frozen=True)
class WindowChoice:
    """What :func:`choose_window` decided.

    Attributes:
        window: K frames per pass, or None when all frames fit in one pass.
        overlap: M frames shared by consecutive windows.
        note: one line for the log and the summary saying why.
        largest: the most frames one pass may hold (K is at most this); None when all frames fit.
    """

    window: int | None
    overlap: int
    note: str
    largest: int | None = None


def balanced_window(num_frames: int, largest: int, overlap: int) -> int:
    """The K of the fewest windows of at most ``largest`` frames, sharing ``overlap``, that cover
    ``num_frames`` frames, all of one size: n = ceil((S - M) / (largest - M)), K = ceil((S + (n - 1) M) / n)."""
    count = -(-(num_frames - overlap) // (largest - overlap))
    return -(-(num_frames + (count - 1) * overlap) // count)


def frame_memory(embed_dim: int) -> tuple[str, FrameMemory]:
    """The measured model for a network of this width: its preset, or the next larger measured one."""
    widths = sorted(PRESET_BY_WIDTH)
    width = next((w for w in widths if w >= embed_dim), widths[-1])
    return PRESET_BY_WIDTH[width], FRAME_MEMORY[PRESET_BY_WIDTH[width]]


def choose_window(
    num_frames: int,
    image_size: tuple[int, int],
    free_bytes: int,
    memory: FrameMemory,
    *,
    chunk: int,
    result_on_device: bool,
    overlap: int = DEFAULT_OVERLAP,
    preset: str = "",
) -> WindowChoice:
    """K and M for ``num_frames`` frames at ``image_size`` (H, W) with ``free_bytes`` free on the device.

    ``chunk``: frames the dense heads see at once. ``result_on_device``: the device is the host
    (CPU), which also holds the result of all frames. ``overlap``: the M asked for, lowered (to
    K / 4, at least :data:`MIN_OVERLAP`) when the window is small. InputError when not even a
    window of :data:`MIN_WINDOW` frames fits.
    """
    pixels = image_size[0] * image_size[1]
    budget = USABLE_FRACTION * free_bytes - (num_frames * pixels * memory.result if result_on_device else 0)

    def needed(frames: int) -> float:
        return pixels * (frames * memory.per_frame + min(frames, chunk) * memory.per_chunk_frame)

    about = f"{preset + ' ' if preset else ''}at {image_size[1]}x{image_size[0]}, {_gb(free_bytes)} free"
    if needed(num_frames) <= budget:
        return WindowChoice(None, overlap, f"{num_frames} frames fit in one pass ({about})")
    if needed(MIN_WINDOW) > budget:
        result = num_frames * pixels * memory.result
        usable = f"{_gb(USABLE_FRACTION * free_bytes)} usable ({USABLE_FRACTION:.0%} of the free memory)"
        if result_on_device and result >= needed(MIN_WINDOW):  # the result is the larger share
            raise InputError(
                f"not enough free memory for {num_frames} frames ({about}): their result needs about "
                f"{_gb(result)} and a window of {MIN_WINDOW} frames {_gb(needed(MIN_WINDOW))}, more than the "
                f"{usable}; keep the result on disk (store=DIR), use fewer frames (max_frames=) or free memory",
                {"max_frames=": "max_frames", "store=": "store"},
            )
        raise InputError(
            f"not enough free memory for a window of {MIN_WINDOW} frames ({about}): it needs about "
            f"{_gb(needed(MIN_WINDOW))}, more than the {usable}; free memory on the device or use a smaller model"
        )
    # needed() is increasing in K; the largest K within the budget, by bisection
    low, high = MIN_WINDOW, num_frames
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if needed(middle) <= budget else (low, middle)
    overlap = min(overlap, max(MIN_OVERLAP, low // 4))
    window = balanced_window(num_frames, low, overlap)
    per_frame = pixels * memory.per_frame
    result = ", the result of all frames set aside" if result_on_device else ""
    return WindowChoice(
        window,
        overlap,
        f"windows of {window} frames sharing {overlap}, chosen from the free memory ({about}: at most {low} "
        f"frames a pass, about {per_frame / 2**20:.1f} MB a frame{result})",
        largest=low,
    )


def automatic_window(
    model: torch.nn.Module,
    device: torch.device,
    num_frames: int,
    image_size: tuple[int, int],
    chunk: int,
    overlap: int,
    result_on_disk: bool = False,
) -> WindowChoice:
    """:func:`choose_window` for ``model`` on ``device`` now: its preset's memory model, the free
    memory less the weights not yet on the device. ``result_on_disk``: the result goes to a store
    (:func:`iggt.inference.windowed.reconstruct_windows`), so no host memory is set aside for it."""
    preset, memory = frame_memory(model.config.embed_dim)
    free = free_memory(device)
    if free is None:
        return WindowChoice(None, overlap, f"free memory of {device} unknown: {num_frames} frames in one pass")
    weights = sum(
        t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()] if t.device.type != device.type
    )
    on_device = device.type == "cuda"
    return choose_window(
        num_frames, image_size, free - weights * on_device, memory, chunk=chunk,
        result_on_device=not on_device and not result_on_disk, overlap=overlap, preset=preset,
    )  # fmt: skip


def free_memory(device: torch.device) -> int | None:
    """Bytes free on ``device``: CUDA's own count, else the host's available memory (psutil, or
    MemAvailable of /proc/meminfo); None when neither can be read."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        import psutil
    except ImportError:
        meminfo = Path("/proc/meminfo")
        if not meminfo.is_file():
            return None
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
        return None
    return int(psutil.virtual_memory().available)


def _gb(count: float) -> str:
    return f"{count / 1e9:.1f} GB"
