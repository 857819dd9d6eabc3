"""The IGGT network: configuration and presets, layers, trunk, heads and checkpoint I/O.

Entry points: ``IGGT.from_preset("large" | "small" | "tiny")``, ``IGGT.from_pretrained(path)``.
"""

from iggt.model.config import PRESETS, IGGTConfig, get_config
from iggt.model.iggt import IGGT

__all__ = ["IGGT", "PRESETS", "IGGTConfig", "get_config"]
