"""Contracts between stages: typed containers with documented shapes, validated on construction."""

from iggt.structures.instances import Instances
from iggt.structures.predictions import Predictions
from iggt.structures.scene import InstanceInfo, Scene

__all__ = ["InstanceInfo", "Instances", "Predictions", "Scene"]
