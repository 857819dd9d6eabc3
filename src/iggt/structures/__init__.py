"""Contracts between stages: typed containers with documented shapes, validated on construction."""

from iggt.structures.instances import Instances
from iggt.structures.predictions import Predictions

__all__ = ["Instances", "Predictions"]
