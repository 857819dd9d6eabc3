"""Per-pixel instance features -> instance IDs shared by all views, lifted to 3D."""

from iggt.instances.clustering import cluster_features
from iggt.instances.config import GRANULARITIES, InstanceConfig
from iggt.instances.extract import cluster_positions_colours, extract_instances
from iggt.instances.lifting import lift_instances
from iggt.instances.majority import majority_filter
from iggt.instances.points import scene_points

__all__ = [
    "GRANULARITIES",
    "InstanceConfig",
    "cluster_features",
    "cluster_positions_colours",
    "extract_instances",
    "lift_instances",
    "majority_filter",
    "scene_points",
]
