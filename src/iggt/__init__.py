"""iggt: the Instance-Grounded Geometry Transformer for semantic 3D reconstruction.

images -> model (IGGT) -> Predictions -> instances (Instances) -> exports / tasks / evaluation
"""

from iggt.lazy_exports import lazy_getattr

__version__ = "0.1.0"
__all__ = ["IGGT", "Instances", "Predictions", "reconstruct", "__version__"]

# Lazy attributes keep `import iggt` light (no torch model build, no optional deps at import).
__getattr__ = lazy_getattr(
    __name__,
    {
        "IGGT": "iggt.model.iggt",
        "Predictions": "iggt.structures.predictions",
        "Instances": "iggt.structures.instances",
        "reconstruct": "iggt.inference.reconstruct",
    },
)
