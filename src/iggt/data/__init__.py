"""Training data in the training batch contract (docs/architecture.md).

SyntheticSceneStream renders fresh procedural scenes on the training device; SceneFolderDataset
reads scenes in the scene format from disk. Both normalise with iggt.data.normalization.
"""

from iggt.lazy_exports import lazy_getattr

__all__ = [
    "SceneFolderDataset",
    "SyntheticSceneStream",
    "SyntheticStreamConfig",
    "build_training_batch",
    "check_training_batch",
    "normalize_geometry",
]

__getattr__ = lazy_getattr(
    __name__,
    {
        "SceneFolderDataset": "iggt.data.scene_dataset",
        "SyntheticSceneStream": "iggt.data.synthetic_stream",
        "SyntheticStreamConfig": "iggt.data.synthetic_stream",
        "build_training_batch": "iggt.data.batch",
        "check_training_batch": "iggt.data.batch",
        "normalize_geometry": "iggt.data.normalization",
    },
)
