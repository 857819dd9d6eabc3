"""Pure geometry functions; the one place camera and pixel conventions are stated and converted.

Convention: OpenCV cameras (x right, y down, z forward), extrinsics camera-from-world (3, 4),
quaternions scalar-last (x, y, z, w) with w >= 0, pixel (u, v) the centre of column u, row v.
Resizing and cropping map pixels as :mod:`iggt.geometry.resize` derives; other tools'
conventions (glTF, COLMAP) are converted in :mod:`iggt.geometry.conventions`.
"""

from iggt.geometry.conventions import (
    COLMAP_PIXEL_OFFSET,
    OPENCV_TO_GLTF,
    colmap_pinhole_params,
    opencv_to_gltf,
    pixels_to_colmap,
)
from iggt.geometry.pose_encoding import cameras_to_pose_encoding, pose_encoding_to_cameras
from iggt.geometry.projection import (
    depth_to_camera_points,
    depth_to_world_points,
    inverse_se3,
    project_points,
    to_homogeneous_matrix,
)
from iggt.geometry.resize import (
    nearest_original_pixel,
    original_coordinate,
    original_intrinsics,
    resize_intrinsics,
    resized_coordinate,
)
from iggt.geometry.rotations import matrix_to_quaternion, quaternion_to_matrix

__all__ = [
    "COLMAP_PIXEL_OFFSET",
    "OPENCV_TO_GLTF",
    "cameras_to_pose_encoding",
    "colmap_pinhole_params",
    "depth_to_camera_points",
    "depth_to_world_points",
    "inverse_se3",
    "matrix_to_quaternion",
    "nearest_original_pixel",
    "opencv_to_gltf",
    "original_coordinate",
    "original_intrinsics",
    "pixels_to_colmap",
    "pose_encoding_to_cameras",
    "project_points",
    "quaternion_to_matrix",
    "resize_intrinsics",
    "resized_coordinate",
    "to_homogeneous_matrix",
]
