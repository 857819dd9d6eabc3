"""How features become instances: one typed config and named granularity presets."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from iggt.device import parse_device
from iggt.errors import ConfigError

POINT_SOURCES = ("world_points", "depth")


@dataclass
class InstanceConfig:
    """Parameters of :func:`iggt.instances.extract_instances` and :func:`cluster_features`."""

    min_instance_size: float = 0.001
    """Smallest instance kept, summed over all views: pixels when >= 1, else a fraction of all
    pixels. Smaller clusters are dropped and their pixels get ID 0."""

    merge_threshold: float = 0.2
    """Clusters whose mean vectors (unit features, plus weighted positions when ``use_positions``)
    are closer than this Euclidean distance are merged into one instance."""

    noise_distance: float | None = 0.5
    """A pixel farther than this from every cluster centre is noise (ID 0); None assigns every
    pixel to its nearest centre, as the official demo does with HDBSCAN's noise."""

    sample_size: int = 10000
    """Most pixels clustered by HDBSCAN (about 0.6 s for 10 000 8-d vectors on one CPU core, a
    little more than linear in this); every other pixel is assigned to the nearest cluster centre. An
    instance of 0.1% of the pixels gets about 10 samples; ``refine_rounds`` catches smaller ones."""

    confidence_quantile: float = 0.2
    """Pixels below this quantile of the point confidence are never sampled (they are still
    labelled); removes sky, edges and flying pixels from the clustering."""

    confidence_threshold: float = 0.0
    """Pixels with point confidence below this absolute value are never sampled either."""

    use_positions: bool = False
    """Append the predicted 3D point to each feature, so that look-alike objects in different
    places separate."""

    position_weight: float = 0.5
    """Weight of the positions, which are first centred on the scene median and divided by the
    median distance to it (so 1.0 weighs the whole scene extent like a unit feature)."""

    majority_radius: int = 1
    """After assignment, each pixel takes the most common label of its (2r+1) x (2r+1) window in
    its view (0: off); removes isolated mislabelled pixels without mixing features across object
    boundaries (a cheap stand-in for the official 3D nearest-neighbour feature averaging)."""

    refine_rounds: int = 1
    """Times the pixels left as noise are sampled and clustered again, which finds instances too
    small to be caught by the first sample; needs ``noise_distance``."""

    point_source: str = "world_points"
    """3D points and confidence used: "world_points" (point head) or "depth" (depth head
    unprojected with the predicted cameras)."""

    box_percentile: float = 2.0
    """Instance boxes span the [p, 100 - p] percentiles of the instance's points per axis."""

    seed: int = 0
    """Seed of the pixel sample; the same seed and input give the same labels."""

    device: str = "auto"
    """Where the instance step computes: "auto", "cpu", "cuda" or "cuda:N" (:mod:`iggt.device`).
    The assignment to centres runs there; on a GPU so do the clustering's pixel-wide passes,
    HDBSCAN's spanning tree, the majority filter and the lifting (their host paths otherwise).
    Callers that ran the network pass its device, so ``--device cpu`` keeps clustering off the GPU."""

    chunk_size: int = 262144
    """Pixels per assignment step; bounds memory to chunk_size x clusters distances."""

    def __post_init__(self) -> None:
        parse_device(self.device)  # a misspelt device fails here; a missing GPU when clustering starts
        finite = {f.name: _is_finite(getattr(self, f.name)) for f in fields(self)}
        rules = {
            "min_instance_size": (self.min_instance_size > 0, "a finite number > 0 (pixels if >= 1, else a fraction)"),
            "merge_threshold": (self.merge_threshold >= 0, "a finite number >= 0"),
            "noise_distance": (self.noise_distance is None or self.noise_distance > 0, "a finite number > 0 or None"),
            "sample_size": (self.sample_size >= 16, "an integer >= 16"),
            "confidence_quantile": (0 <= self.confidence_quantile < 1, "a finite number in [0, 1)"),
            "confidence_threshold": (True, "a finite number"),
            "position_weight": (self.position_weight >= 0, "a finite number >= 0"),
            "majority_radius": (self.majority_radius >= 0, "an integer >= 0"),
            "refine_rounds": (self.refine_rounds >= 0, "an integer >= 0"),
            "point_source": (self.point_source in POINT_SOURCES, f"one of {POINT_SOURCES}"),
            "box_percentile": (0 <= self.box_percentile < 50, "a finite number in [0, 50)"),
            "chunk_size": (self.chunk_size >= 1, "an integer >= 1"),
        }
        for name, (ok, rule) in rules.items():
            if not (ok and finite[name]):
                field_text = f"InstanceConfig.{name}="
                raise ConfigError(f"{field_text}{getattr(self, name)!r} must be {rule}", {field_text: name})

    def min_pixels(self, total_pixels: int) -> int:
        """``min_instance_size`` in pixels for a scene of ``total_pixels`` pixels (at least 1)."""
        if self.min_instance_size >= 1:
            return int(self.min_instance_size)
        return max(1, round(self.min_instance_size * total_pixels))

    @classmethod
    def for_granularity(cls, granularity: str, **overrides) -> InstanceConfig:
        """A config for "coarse" (whole objects), "medium" (the defaults) or "fine" (parts)."""
        if granularity not in GRANULARITIES:
            raise ConfigError(f"unknown granularity {granularity!r}; choose one of {sorted(GRANULARITIES)}")
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown InstanceConfig fields {sorted(unknown)}")
        return cls(**{**GRANULARITIES[granularity], **overrides})


def _is_finite(value) -> bool:
    """False for a float NaN or infinity; True for anything else (ints, strings, None)."""
    return not isinstance(value, float) or math.isfinite(value)


GRANULARITIES: dict[str, dict] = {
    "coarse": {"merge_threshold": 0.35, "min_instance_size": 0.004},
    "medium": {},
    "fine": {"merge_threshold": 0.1, "min_instance_size": 0.0003},
}
