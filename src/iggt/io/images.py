"""Reading the user's input: a folder of images, several image files, a scene folder, or a video.

Every image comes out as (H, W, 3) float32 RGB in [0, 1] with its EXIF orientation applied and
transparency composited onto white; sizes may differ between images. Every failure is an
:class:`InputError` whose one line names the file and the fix.

:func:`open_images` checks the input (files' headers, the video's frame count) and gives an
:class:`ImageStream` that decodes one view at a time when iterated, so a long capture is never
held whole at its own resolution; :func:`load_images` reads them all into memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm.auto import tqdm

from iggt.errors import InputError, first_line
from iggt.io.scene_format import MANIFEST, read_manifest
from iggt.io.video import DEFAULT_SAMPLE_FPS, VIDEO_EXTENSIONS, decode_video_frames, evenly_spaced_indices, sample_video

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
SCENE_IMAGES_FOLDER = "images"
MAX_IMAGE_PIXELS = 100_000_000
"""Largest image read (100 MP: 1.2 GB as float RGB); checked from the file's header before decoding."""


@dataclass
class LoadedImages:
    """Images read from one input, in view order.

    Attributes:
        images: S arrays (H_i, W_i, 3) float32 RGB in [0, 1]; sizes may differ.
        names: S names, the file name of each image (``clip.mp4#frame00042`` for video frames).
        notes: what was done that the user should know (subsampling, frame rate).
    """

    images: list[np.ndarray]
    names: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def num_views(self) -> int:
        return len(self.images)


@dataclass
class ImageStream:
    """The views of one input, decoded one at a time, in view order, each time it is iterated.

    Attributes:
        names: S names, as :attr:`LoadedImages.names`.
        stored_sizes: S (H, W) as stored in the files' headers, before any EXIF orientation (which
            may swap them: good for checks of the shorter side, not for the aspect ratio); None
            for a video, whose frames' size is known once decoded.
        notes: what was done that the user should know (subsampling, frame rate).
        frames: a new iterator over the S views, (H, W, 3) float32 RGB in [0, 1].
    """

    names: list[str]
    stored_sizes: list[tuple[int, int]] | None
    notes: list[str]
    frames: Callable[[], Iterator[np.ndarray]]

    @property
    def num_views(self) -> int:
        return len(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.frames()

    @classmethod
    def of(cls, loaded: LoadedImages) -> ImageStream:
        """The stream of images already in memory."""
        sizes = [tuple(image.shape[:2]) for image in loaded.images]
        return cls(list(loaded.names), sizes, list(loaded.notes), lambda: iter(loaded.images))

    def load(self) -> LoadedImages:
        """All views decoded into memory."""
        return LoadedImages(list(self), self.names, self.notes)


def views_to_keep(
    count: int, max_frames: int | None, noun: str = "images", spelling: str = "--max-frames {}"
) -> tuple[list[int], list[str]]:
    """Indices of at most ``max_frames`` of ``count`` views, evenly spaced with the first and last
    kept, and the note that says so (none when all are kept); ``noun`` names what is counted and
    ``spelling`` is how the caller's interface spells max_frames."""
    if max_frames is None or count <= max_frames:
        return list(range(count)), []
    keep = evenly_spaced_indices(count, max_frames).tolist()
    return keep, [f"kept {len(keep)} of {count} {noun}, evenly spaced ({spelling.format(max_frames)})"]


def load_images(
    inputs: str | Path | Sequence[str | Path],
    *,
    fps: float | None = None,
    frames: int | None = None,
    max_frames: int | None = None,
    progress: bool = False,
) -> LoadedImages:
    """Read one folder, one scene folder (with ``images/``), one video, or one or more image files
    into memory (arguments as :func:`open_images`)."""
    return open_images(inputs, fps=fps, frames=frames, max_frames=max_frames, progress=progress).load()


def open_images(
    inputs: str | Path | Sequence[str | Path],
    *,
    fps: float | None = None,
    frames: int | None = None,
    max_frames: int | None = None,
    progress: bool = False,
) -> ImageStream:
    """Check one folder, one scene folder (with ``images/``), one video, or one or more image files,
    and stream their views.

    Each image file's header is read here (a file that is no image, or too large, is an error
    before any is decoded); a video's frames are chosen from its frame count and rate.

    Args:
        inputs: a path or a sequence of paths.
        fps, frames: video sampling (see :func:`iggt.io.video.sample_video`); an error for images.
        max_frames: keep at most this many views, spread evenly over the input.
        progress: show a progress bar on stderr while the views are decoded.
    """
    paths = [Path(inputs)] if isinstance(inputs, (str, Path)) else [Path(p) for p in inputs]
    if not paths:
        raise InputError("no input given: pass a folder of images, image files, or a video")
    if max_frames is not None and max_frames < 1:
        raise InputError(f"--max-frames must be at least 1, got {max_frames}")
    for path in paths:
        if not path.exists():
            raise InputError(f"input {path} does not exist")
    if len(paths) == 1 and paths[0].is_dir():
        if fps is not None or frames is not None:
            raise InputError("--fps and --frames sample a video; to use fewer images pass --max-frames")
        return _open_files(list_image_files(paths[0]), max_frames, progress)
    if len(paths) == 1 and paths[0].suffix.lower() in VIDEO_EXTENSIONS:
        return _open_video(paths[0], fps, frames, max_frames, progress)
    if fps is not None or frames is not None:
        raise InputError("--fps and --frames sample a video; to use fewer images pass --max-frames")
    for path in paths:
        _check_image_path(path, several=len(paths) > 1)
    return _open_files(paths, max_frames, progress)


def list_image_files(folder: str | Path) -> list[Path]:
    """Image files of a folder, naturally sorted; for a scene folder (scene.json) its frames in the
    manifest's order; for a folder with only an ``images/`` subfolder, the images in that."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"input {folder} is not a folder")
    if (folder / MANIFEST).is_file():
        return _scene_image_files(folder)
    files = _image_files_in(folder)
    if not files and (folder / SCENE_IMAGES_FOLDER).is_dir():
        files = _image_files_in(folder / SCENE_IMAGES_FOLDER)
    if not files:
        raise InputError(
            f"folder {folder} has no images ({', '.join(IMAGE_EXTENSIONS)}) and no images/ subfolder with any"
        )
    return files


def _scene_image_files(folder: Path) -> list[Path]:
    """The images of a scene-format folder, in the frame order of its manifest."""
    manifest = read_manifest(folder)
    files = [folder / SCENE_IMAGES_FOLDER / f"{frame}.{manifest.image_format}" for frame in manifest.frames]
    missing = [path.name for path in files if not path.is_file()]
    if missing:
        raise InputError(f"scene {folder} lists frames without images: {', '.join(missing[:4])}")
    return files


def _image_files_in(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted((p for p in files if not p.name.startswith(".")), key=_natural_key)


def _natural_key(path: Path) -> list:
    """Sort key that orders frame2 before frame10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _check_image_path(path: Path, several: bool) -> None:
    if path.is_dir():
        raise InputError(f"{path} is a folder: pass one folder on its own, or image files only")
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS and several:
        raise InputError(f"{path.name} is a video: pass one video on its own, not with other inputs")
    if suffix not in IMAGE_EXTENSIONS:
        raise InputError(
            f"unsupported input {path.name}: expected images ({', '.join(IMAGE_EXTENSIONS)}) "
            f"or a video ({', '.join(VIDEO_EXTENSIONS)})"
        )


def _open_files(paths: list[Path], max_frames: int | None, progress: bool) -> ImageStream:
    keep, notes = views_to_keep(len(paths), max_frames)
    paths = [paths[i] for i in keep]  # before reading: dropped files are never opened
    sizes = [stored_size(path) for path in paths]

    def frames() -> Iterator[np.ndarray]:
        # The context closes (clears) the bar when a read fails, so the error line prints cleanly.
        with tqdm(paths, desc="reading images", unit="image", disable=not progress, leave=False) as bar:
            for path in bar:
                yield read_image(path)

    return ImageStream([p.name for p in paths], sizes, notes, frames)


def _open_video(
    path: Path, fps: float | None, frames: int | None, max_frames: int | None, progress: bool
) -> ImageStream:
    sampled, total = sample_video(path, fps=fps, frames=frames)
    how = f"{frames} evenly spaced" if frames is not None else f"{fps or DEFAULT_SAMPLE_FPS:g} per second"
    notes = [f"sampled {len(sampled)} of {total} video frames ({how})"]
    keep, kept_notes = views_to_keep(len(sampled), max_frames, "sampled frames")
    indices = [int(sampled[i]) for i in keep]

    def decoded() -> Iterator[np.ndarray]:
        for frame in decode_video_frames(path, indices, progress):
            yield _to_float_rgb(frame)
            del frame  # not held while the next frame is decoded

    return ImageStream([f"{path.name}#frame{i:05d}" for i in indices], None, notes + kept_notes, decoded)


def stored_size(path: str | Path) -> tuple[int, int]:
    """(H, W) of an image file as stored (before EXIF orientation), from its header alone;
    InputError for a file that is no readable image or has more than MAX_IMAGE_PIXELS."""
    with _opened(Path(path)) as image:
        return image.height, image.width


def read_image(path: str | Path) -> np.ndarray:
    """One image file -> (H, W, 3) float32 RGB in [0, 1], EXIF orientation applied."""
    with _opened(Path(path)) as image:
        image = ImageOps.exif_transpose(image)
        image.load()
        return _to_float_rgb(image)


@contextmanager
def _opened(path: Path) -> Iterator[Image.Image]:
    """``path`` opened by PIL, its header's pixel count checked; a failure inside the block (at
    open or while decoding) is the one-line InputError that names the file."""
    try:
        with Image.open(path) as image:
            _check_pixel_count(path, image.width * image.height, image.size)
            yield image
    except Image.DecompressionBombError as exc:
        # PIL refuses far larger images at open, before the size can be read; its message has the count.
        _check_pixel_count(path, _bomb_pixels(exc))
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"cannot read image {path.name}: {first_line(exc)}; replace or remove the file") from exc


def _bomb_pixels(exc: Exception) -> int:
    """The pixel count in PIL's refusal of a far larger image."""
    count = re.search(r"\((\d+) pixels\)", str(exc))
    return int(count.group(1)) if count else MAX_IMAGE_PIXELS + 1


def _check_pixel_count(path: Path, pixels: int, size: tuple[int, int] | None = None) -> None:
    """InputError when an image's header announces more than MAX_IMAGE_PIXELS (read before decoding);
    ``size`` is (W, H) when known."""
    if pixels > MAX_IMAGE_PIXELS:
        megapixels = f"{pixels / 1e6:.0f} MP"
        described = f"is {size[0]}x{size[1]} pixels ({megapixels})" if size else f"has {megapixels}"
        raise InputError(
            f"image {path.name} {described}, above the {MAX_IMAGE_PIXELS / 1e6:.0f} MP "
            "iggt reads (12 bytes a pixel once decoded); downscale it first"
        )


def _to_float_rgb(image: Image.Image | np.ndarray) -> np.ndarray:
    """A PIL image of any mode, or a uint8 (H, W) or (H, W, C) array such as a decoded video frame,
    -> (H, W, 3) float32 in [0, 1]; alpha composited onto white."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grey: PIL's convert("RGB") would clip to 255, so scale by the 16-bit range instead.
        grey = np.asarray(image, dtype=np.float32) / 65535.0
        return np.repeat(np.clip(grey, 0, 1)[..., None], 3, axis=-1)
    if image.mode == "F":
        grey = np.asarray(image, dtype=np.float32)
        return np.repeat(np.clip(grey, 0, 1)[..., None], 3, axis=-1)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3:]
        return np.ascontiguousarray(rgba[..., :3] * alpha + (1.0 - alpha))
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
