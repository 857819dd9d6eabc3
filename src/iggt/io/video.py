"""Reading frames from a video file (through imageio's ffmpeg plugin), sampled by rate or count.

Frames are decoded in order and only the selected ones are kept, so memory grows with the number
of frames returned, not with the length of the video.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from iggt.errors import InputError, first_line

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
DEFAULT_SAMPLE_FPS = 1.0


def evenly_spaced_indices(total: int, count: int) -> np.ndarray:
    """(min(count, total),) distinct ascending indices spread evenly over range(total), ends included."""
    if count >= total:
        return np.arange(total)
    return np.unique(np.linspace(0, total - 1, count).round().astype(np.int64))


def rate_indices(total: int, video_fps: float, sample_fps: float) -> np.ndarray:
    """Indices of the frames nearest to the times 0, 1/sample_fps, 2/sample_fps, ... of the video."""
    if sample_fps >= video_fps:
        return np.arange(total)
    step = video_fps / sample_fps
    return np.unique(np.minimum(np.round(np.arange(math.ceil(total / step)) * step), total - 1).astype(np.int64))


def _open_reader(path: Path):
    try:
        import imageio.v2 as imageio
    except ImportError as exc:
        raise InputError("reading videos needs imageio and imageio-ffmpeg: pip install 'iggt[video]'") from exc
    try:
        return imageio.get_reader(str(path), format="FFMPEG")
    except Exception as exc:  # imageio raises assorted types (OSError, RuntimeError, ValueError) per backend
        raise InputError(f"cannot open video {path.name}: {first_line(exc)}; convert it to H.264 .mp4") from exc


def read_video_frames(
    path: str | Path, *, fps: float | None = None, frames: int | None = None, progress: bool = False
) -> tuple[list[np.ndarray], list[int], int]:
    """Decode selected frames of a video.

    Args:
        path: the video file.
        fps: keep about this many frames per second of video.
        frames: keep this many frames spread evenly over the whole video (exclusive with ``fps``).
            With neither, ``DEFAULT_SAMPLE_FPS`` frames per second are kept.
        progress: show a progress bar of the decoding on stderr.

    Returns:
        (frames, indices, total): the frames as decoded, (H, W, 3) uint8 RGB (4 times smaller than
        float RGB while many are held; :func:`iggt.io.images.load_images` converts them), their
        frame indices in the video, and the number of frames in the video.
    """
    path = Path(path)
    if fps is not None and frames is not None:
        raise InputError("give --fps or --frames, not both")
    if fps is not None and fps <= 0:
        raise InputError(f"--fps must be positive, got {fps}")
    if frames is not None and frames < 1:
        raise InputError(f"--frames must be at least 1, got {frames}")
    reader = _open_reader(path)
    try:
        total, video_fps = _frame_count_and_rate(reader, path)
        if frames is not None:
            wanted = evenly_spaced_indices(total, frames)
        else:
            wanted = rate_indices(total, video_fps, fps or DEFAULT_SAMPLE_FPS)
        images, indices = _decode(reader, path, set(wanted.tolist()), progress)
    finally:
        reader.close()
    if not images:
        raise InputError(f"video {path.name} has no decodable frames; convert it to H.264 .mp4")
    return images, indices, total


def _frame_count_and_rate(reader, path: Path) -> tuple[int, float]:
    try:
        total = int(reader.count_frames())
        video_fps = float(reader.get_meta_data().get("fps") or 0)
    except Exception as exc:  # ffmpeg failures surface as RuntimeError/OSError/ValueError
        raise InputError(f"cannot read video {path.name}: {first_line(exc)}; convert it to H.264 .mp4") from exc
    if total < 1:
        raise InputError(f"video {path.name} has no frames")
    if not math.isfinite(video_fps) or video_fps <= 0:
        video_fps = DEFAULT_SAMPLE_FPS  # unknown rate: fall back to one frame per sampling step
    return total, video_fps


def _decode(reader, path: Path, wanted: set[int], progress: bool) -> tuple[list[np.ndarray], list[int]]:
    images, indices = [], []
    last = max(wanted)
    bar = tqdm(total=last + 1, desc="decoding video", unit="frame", disable=not progress, leave=False)
    try:
        for index, frame in enumerate(reader):
            bar.update(1)
            if index in wanted:
                images.append(np.asarray(frame))
                indices.append(index)
            if index >= last:
                break
    except Exception as exc:  # a stream that breaks mid-way: keep nothing rather than a partial clip
        raise InputError(f"cannot decode video {path.name}: {first_line(exc)}; convert it to H.264 .mp4") from exc
    finally:
        bar.close()  # cleared before any error line is printed
    return images, indices
