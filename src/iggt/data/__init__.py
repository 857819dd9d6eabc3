"""Training data in the training batch contract (docs/architecture.md).

SyntheticSceneStream renders fresh procedural scenes on the training device; SceneFolderDataset
reads scenes in the scene format from disk. Both normalise with iggt.data.normalization.
"""

from importlib import import_module

__all__ = [
    "SceneFolderDataset",
    "SyntheticSceneStream",
    "SyntheticStreamConfig",
    "build_training_batch",
    "check_training_batch",
    "normalize_geometry",
]

_LAZY = {
    "SceneFolderDataset": "iggt.data.scene_dataset",
    "SyntheticSceneStream": "iggt.data.synthetic_stream",
    "SyntheticStreamConfig": "iggt.data.synthetic_stream",
    "build_training_batch": "iggt.data.batch",
    "check_training_batch": "iggt.data.batch",
    "normalize_geometry": "iggt.data.normalization",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'iggt.data' has no attribute {name!r}")
