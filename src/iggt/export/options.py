"""Options shared by the exporters (which points go out, how they look)."""

from __future__ import annotations

from dataclasses import dataclass

from iggt.errors import ConfigError
from iggt.instances.config import POINT_SOURCES


@dataclass
class ExportOptions:
    """How :func:`iggt.export.export_all` and each ``export_<fmt>`` write a scene."""

    point_source: str = "world_points"
    """3D points exported, one of ``iggt.instances.config.POINT_SOURCES``: "world_points" (point
    head) or "depth" (depth head + cameras)."""

    confidence_quantile: float = 0.2
    """The least confident fraction of pixels left out of point clouds (PLY, GLB, COLMAP)."""

    max_points: int | None = 2_000_000
    """Most points in the PLY and GLB point clouds (a seeded random subset); None: all."""

    max_colmap_points: int = 100_000
    """Most points3D in the COLMAP model, each with its one 2D observation."""

    frustum_depth: float | None = None
    """Distance from camera centre to image plane of the GLB frusta, in scene units; None: a
    tenth of the median predicted depth."""

    overlay_alpha: float = 0.5
    """Opacity of the instance colours on the overlay PNGs."""

    seed: int = 0
    """Seed of the point subsampling."""

    deflate_npz_floats: bool = False
    """Deflate the float arrays of predictions.npz and instances.npz (lossless either way; integer
    arrays such as the labels are always deflated). Off by default: float32 network maps deflate
    only to 88-93 % of their size, for 0.3 CPU-seconds per frame of 336 x 518 with `large`'s 8
    feature channels (33 of the 40 s of a 100-frame export on 2 cores, docs/performance.md)."""

    threads: int | None = None
    """Threads each format may use for its deflate and its per-view images (None: every CPU this
    process may use). The files do not depend on it."""

    def __post_init__(self) -> None:
        checks = {
            "point_source": self.point_source in POINT_SOURCES,
            "confidence_quantile": 0 <= self.confidence_quantile < 1,
            "max_points": self.max_points is None or self.max_points >= 1,
            "max_colmap_points": self.max_colmap_points >= 0,
            "frustum_depth": self.frustum_depth is None or self.frustum_depth > 0,
            "overlay_alpha": 0 <= self.overlay_alpha <= 1,
            "threads": self.threads is None or self.threads >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"ExportOptions.{name}={getattr(self, name)!r} is out of range; see its docstring")
