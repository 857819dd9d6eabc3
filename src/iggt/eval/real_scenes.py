"""Real photographs with ground-truth geometry that installed packages ship, as evaluation scenes.

Nothing is downloaded and nothing is stored in this repository: each function reads a package's
own data files at run time (install the package named in the error if it is missing).

- :func:`middlebury_motorcycle`: the Middlebury 2014 "Motorcycle" stereo pair (Scharstein et al.,
  GCPR 2014) as scikit-image ships it (``skimage.data.stereo_motorcycle``: 500 x 741, down-sampled
  4x, with its ground-truth disparity and calibration), turned into a 2-view :class:`Scene`.
"""

from __future__ import annotations

import numpy as np

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
    extrinsic = np.zeros((2, 3, 4), np.float32)
    extrinsic[:, :, :3] = np.eye(3)
    extrinsic[1, 0, 3] = -MOTORCYCLE_BASELINE_M  # t = -R c with c = (baseline, 0, 0)
    height, width = depth_left.shape
    return Scene(
        images=np.stack([left, right]).astype(np.uint8),
        depth=np.stack([depth_left, depth_right]),
        intrinsic=np.stack([intrinsic, intrinsic_right]),
        extrinsic=extrinsic,
        instance_ids=np.zeros((2, height, width), np.int32),
        class_ids=None,
        frame_names=["left", "right"],
        instances={},
        metadata={"source": "Middlebury 2014 Motorcycle via skimage.data.stereo_motorcycle (4x down-sampled)"},
    )
