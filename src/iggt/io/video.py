"""Reading frames from a video file (through imageio's ffmpeg plugin), sampled by rate or count.

The frames to keep are chosen from the video's frame count and rate before anything is decoded;
they are then decoded in order, one at a time, so memory holds one frame however long the video.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
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


def sample_video(path: str | Path, *, fps: float | None = None, frames: int | None = None) -> tuple[np.ndarray, int]:
    """Which frames of a video to keep, from its frame count and rate (nothing is decoded).

    Args:
        path: the video file.
        fps: keep about this many frames per second of video.
        frames: keep this many frames spread evenly over the whole video (exclusive with ``fps``).
            With neither, ``DEFAULT_SAMPLE_FPS`` frames per second are kept.

    Returns:
        (indices, total): the ascending frame indices to keep and the number of frames in the video.
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
    finally:
        reader.close()
    if frames is not None:
        return evenly_spaced_indices(total, frames), total
    return rate_indices(total, video_fps, fps or DEFAULT_SAMPLE_FPS), total


def decode_video_frames(path: str | Path, indices: Sequence[int], progress: bool = False) -> Iterator[np.ndarray]:
    """The frames ``indices`` (ascending) of a video, decoded in order, one at a time, as (H, W, 3)
    uint8 RGB: memory holds one frame whatever the video's length. A stream that breaks, or ends
    before the last index, is an InputError (never a shorter clip)."""
    path = Path(path)
    wanted = iter(indices)
    target = next(wanted, None)
    if target is None:
        return
    reader = _open_reader(path)
    bar = tqdm(total=indices[-1] + 1, desc="decoding video", unit="frame", disable=not progress, leave=False)
    try:
        frames = enumerate(reader)
        while target is not None:
            try:
                index, frame = next(frames)
            except StopIteration:
                raise InputError(
                    f"video {path.name} ends before frame {target} it announced; convert it to H.264 .mp4"
                ) from None
            except Exception as exc:  # ffmpeg failures surface as RuntimeError/OSError/ValueError
                message = f"cannot decode video {path.name}: {first_line(exc)}; convert it to H.264 .mp4"
                raise InputError(message) from exc
            bar.update(1)
            if index == target:
                target = next(wanted, None)
                yield np.asarray(frame)
            del frame  # not held while the next frame is decoded
    finally:
        bar.close()  # cleared before any error line is printed
        reader.close()


def read_video_frames(
    path: str | Path, *, fps: float | None = None, frames: int | None = None, progress: bool = False
) -> tuple[list[np.ndarray], list[int], int]:
    """:func:`sample_video`'s frames, all decoded: (frames (H, W, 3) uint8 RGB, their indices in
    the video, the number of frames in the video)."""
    indices, total = sample_video(path, fps=fps, frames=frames)
    images = list(decode_video_frames(path, indices.tolist(), progress))
    return images, indices.tolist(), total


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
