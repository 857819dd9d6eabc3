"""Real photographs with ground-truth geometry that installed packages ship, as evaluation scenes.

Nothing is downloaded and nothing is stored in this repository: each function reads a package's
own data files at run time, installed or, for the source archives, fetched by the user (the error
of a missing one names the command).

- :func:`middlebury_motorcycle`: the Middlebury 2014 "Motorcycle" stereo pair (Scharstein et al.,
  GCPR 2014) as scikit-image ships it (``skimage.data.stereo_motorcycle``: 500 x 741, down-sampled
  4x, with its ground-truth disparity and calibration), turned into a 2-view :class:`Scene`.
- :func:`sdist_stereo_pair`: two more Middlebury pairs with ground-truth disparity but no
  calibration, read from the source archives (sdists) of two PyPI packages, which hold them as
  test and sample data: "Aloe" (Middlebury 2006; Hirschmueller and Scharstein, CVPR 2007) in
  opencv-python's and "Cones" (Middlebury 2003; Scharstein and Szeliski, CVPR 2003) in pandora's
  (:data:`SDIST_PAIRS` names the versions; :mod:`iggt.eval.sdist_fetch` fetches them, :data:`SDIST_COMMAND`).
  Without calibration they serve depth up to scale and the pair's relative rotation and
  direction, not point maps.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from iggt.errors import InputError
from iggt.structures.scene import Scene

# Calibration of the 4x down-sampled pair, from skimage.data.stereo_motorcycle's documentation.
MOTORCYCLE_FOCAL = 994.978
MOTORCYCLE_PRINCIPAL = (311.193, 254.877)  # (cx, cy) of the left camera
MOTORCYCLE_DOFFS = 31.086  # cx_right - cx_left
MOTORCYCLE_BASELINE_M = 0.193001


def _skimage_data():
    try:
        from skimage import data
    except ImportError:
        raise InputError(
            "real-photo scenes read scikit-image's bundled data; install it: pip install scikit-image"
        ) from None
    return data


def disparity_to_depth(disparity: np.ndarray, focal: float, baseline: float, doffs: float) -> np.ndarray:
    """(H, W) left-image disparities in pixels -> (H, W) float32 z-depth in metres, 0 where unknown.

    Middlebury's convention: z = focal * baseline / (d + doffs); non-finite or non-positive
    denominators have no ground truth.
    """
    denominator = disparity.astype(np.float64) + doffs
    known = np.isfinite(denominator) & (denominator > 0)
    depth = np.zeros(disparity.shape, np.float64)
    depth[known] = focal * baseline / denominator[known]
    return depth.astype(np.float32)


def warp_depth_to_right(disparity: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """The right view's depth, splatted from the left one along the rows (nearest surface wins).

    A left pixel (x, y) with disparity d is seen at (x - d, y) in the right image of a rectified
    pair, at the same depth. Right pixels no left pixel lands on (occlusions) stay 0.
    """
    height, width = depth.shape
    rows, columns = np.nonzero(depth > 0)
    target = np.rint(columns - disparity[rows, columns]).astype(np.int64)
    inside = (target >= 0) & (target < width)
    rows, target, z = rows[inside], target[inside], depth[rows[inside], columns[inside]]
    right = np.full((height, width), np.inf, np.float32)
    np.minimum.at(right, (rows, target), z)  # the nearest of the pixels landing on one right pixel
    right[~np.isfinite(right)] = 0
    return right


def middlebury_motorcycle() -> Scene:
    """The Middlebury 2014 Motorcycle pair: 2 views, ground-truth depth in both, known cameras.

    The world frame is the left camera's (OpenCV); the right camera sits ``baseline`` metres along
    its +x axis with the same orientation (a rectified pair). The left depth comes from the ground-truth
    disparity, the right one is splatted from it (its occluded pixels are invalid). No instance labels
    (all 0): the scene serves depth, point and camera metrics.
    """
    left, right, disparity = _skimage_data().stereo_motorcycle()
    depth_left = disparity_to_depth(disparity, MOTORCYCLE_FOCAL, MOTORCYCLE_BASELINE_M, MOTORCYCLE_DOFFS)
    depth_right = warp_depth_to_right(disparity, depth_left)
    cx, cy = MOTORCYCLE_PRINCIPAL
    intrinsic = np.array([[MOTORCYCLE_FOCAL, 0, cx], [0, MOTORCYCLE_FOCAL, cy], [0, 0, 1]], np.float32)
    intrinsic_right = intrinsic.copy()
    intrinsic_right[0, 2] += MOTORCYCLE_DOFFS
    return _rectified_pair(
        np.stack([left, right]).astype(np.uint8),
        np.stack([depth_left, depth_right]),
        np.stack([intrinsic, intrinsic_right]),
        MOTORCYCLE_BASELINE_M,
        {"source": "Middlebury 2014 Motorcycle via skimage.data.stereo_motorcycle (4x down-sampled)"},
    )


def _rectified_pair(
    images: np.ndarray, depth: np.ndarray, intrinsic: np.ndarray, baseline: float, metadata: dict
) -> Scene:
    """(2, H, W, 3) uint8 images, (2, H, W) depth and (2, 3, 3) intrinsics of a rectified pair ->
    a :class:`Scene` in the left camera's frame (OpenCV), the right camera ``baseline`` along its +x
    with the same orientation. No instance labels (all 0)."""
    extrinsic = np.zeros((2, 3, 4), np.float32)
    extrinsic[:, :, :3] = np.eye(3)
    extrinsic[1, 0, 3] = -baseline  # t = -R c with c = (baseline, 0, 0)
    return Scene(
        images=images,
        depth=depth,
        intrinsic=intrinsic,
        extrinsic=extrinsic,
        instance_ids=np.zeros(depth.shape, np.int32),
        class_ids=None,
        frame_names=["left", "right"],
        instances={},
        metadata=metadata,
    )


@dataclass(frozen=True)
class SdistStereoPair:
    """Where a rectified stereo pair with ground-truth disparity lies in a package's source archive."""

    package: str
    version: str
    archive: str
    """File name of the sdist, as the package index names it."""
    folder: str
    """Member folder of the four files below."""
    left: str
    right: str
    disparity_left: str
    disparity_right: str | None
    """None: the right view's depth is splatted from the left one (its occlusions stay unknown)."""
    source: str


SDIST_PAIRS = {
    "middlebury-aloe": SdistStereoPair(
        "opencv-python", "5.1.0.95", "opencv_python-5.1.0.95.tar.gz", "opencv_python-5.1.0.95/opencv/samples/data",
        "aloeL.jpg", "aloeR.jpg", "aloeGT.png", None,
        "Middlebury 2006 Aloe (1282 x 1110) from the opencv-python 5.1.0.95 sdist's samples/data",
    ),
    "middlebury-cones": SdistStereoPair(
        "pandora", "1.9.0", "pandora-1.9.0.tar.gz", "pandora-1.9.0/tests/pandora",
        "left_rgb.tif", "right_rgb.tif", "disp_left.tif", "disp_right.tif",
        "Middlebury 2003 Cones (450 x 375) from the pandora 1.9.0 sdist's tests/pandora",
    ),
}  # fmt: skip
SDIST_COMMAND = "python -m iggt.eval.sdist_fetch DIR"
"""Fetches both archives into DIR (about 125 MB, checked against the index's sha256); nothing is
installed or built."""


def sdist_stereo_pair(name: str, folder: Path) -> Scene:
    """A pair of :data:`SDIST_PAIRS` as a 2-view :class:`Scene`, read from its sdist in ``folder``.

    The pair has no calibration, so its geometry is known up to scale: the world frame is the left
    camera's (OpenCV), the right camera sits one unit along +x (a rectified pair), and the depth is
    ``focal / disparity`` in those units with an assumed focal length of the image width. Depth
    up to scale (AbsRel and delta with the median scale) and the relative rotation and direction
    are exact; point maps and intrinsics are not, so score only depth and cameras.
    """
    if name not in SDIST_PAIRS:
        raise InputError(f"unknown stereo pair {name!r}; choose one of {sorted(SDIST_PAIRS)}")
    pair = SDIST_PAIRS[name]
    path = Path(folder) / pair.archive
    if not path.is_file():
        fetch = SDIST_COMMAND.replace("DIR", str(folder))
        raise InputError(f"{path} is missing: fetch the source archives with {fetch}")
    try:
        with tarfile.open(path) as archive:
            left, right, disparity_left = (
                _archive_image(archive, f"{pair.folder}/{member}", path)
                for member in (pair.left, pair.right, pair.disparity_left)
            )
            disparity_right = (
                None
                if pair.disparity_right is None
                else _archive_image(archive, f"{pair.folder}/{pair.disparity_right}", path)
            )
    except tarfile.TarError as error:
        raise InputError(f"{path} is not a readable source archive ({error}); download it again") from None
    focal = float(left.shape[1])
    depth_left = disparity_to_depth(disparity_left, focal, 1.0, 0.0)
    if disparity_right is None:
        depth_right = warp_depth_to_right(disparity_left, depth_left)
    else:
        depth_right = disparity_to_depth(disparity_right, focal, 1.0, 0.0)
    height, width = depth_left.shape
    intrinsic = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], np.float32)
    return _rectified_pair(
        np.stack([_as_rgb8(left), _as_rgb8(right)]),
        np.stack([depth_left, depth_right]),
        np.stack([intrinsic, intrinsic]),
        1.0,
        {"source": pair.source, "calibrated": False},
    )


def _archive_image(archive: tarfile.TarFile, member: str, path: Path) -> np.ndarray:
    """One image member of an sdist as an array (TIFFs through tifffile: float32 and RGB floats)."""
    try:
        data = archive.extractfile(member)
    except KeyError:
        data = None
    if data is None:
        raise InputError(f"{path} has no {member}: it is not the release named in SDIST_PAIRS; download that one")
    content = io.BytesIO(data.read())
    if member.endswith(".tif"):
        try:
            import tifffile  # scikit-image's dependency, so there with the dev extra
        except ImportError:
            raise InputError(f"{member} is a TIFF of float disparities; install tifffile to read it") from None
        return np.asarray(tifffile.imread(content))
    return np.asarray(Image.open(content))


def _as_rgb8(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3) image of 0-255 values (uint8 or float) -> (H, W, 3) uint8."""
    rgb = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image[..., :3]
    return np.clip(np.rint(rgb.astype(np.float64)), 0, 255).astype(np.uint8)
