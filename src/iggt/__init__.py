"""iggt: the Instance-Grounded Geometry Transformer for semantic 3D reconstruction.

images -> model (IGGT) -> Predictions -> instances (Instances) -> exports / tasks / evaluation
"""

from importlib import import_module

__version__ = "0.1.0"
__all__ = ["IGGT", "Instances", "Predictions", "reconstruct", "__version__"]

# Lazy attributes keep `import iggt` light (no torch model build, no optional deps at import).
_LAZY = {
    "IGGT": "iggt.model.iggt",
    "Predictions": "iggt.structures.predictions",
    "Instances": "iggt.structures.instances",
    "reconstruct": "iggt.inference.reconstruct",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'iggt' has no attribute {name!r}")
