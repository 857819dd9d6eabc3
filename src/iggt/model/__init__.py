"""The IGGT network: configuration and presets, layers, trunk, heads and checkpoint I/O.

Entry points: ``IGGT.from_preset("large" | "small" | "tiny")``, ``IGGT.from_pretrained(source)``.
"""

from iggt.lazy_exports import lazy_getattr

__all__ = ["IGGT", "PRESETS", "IGGTConfig", "get_config"]

# Lazy attributes: reading iggt.model.hub (e.g. the default model name of a CLI option) must not
# import torch and build the network's modules.
__getattr__ = lazy_getattr(
    __name__,
    {
        "IGGT": "iggt.model.iggt",
        "PRESETS": "iggt.model.config",
        "IGGTConfig": "iggt.model.config",
        "get_config": "iggt.model.config",
    },
)
