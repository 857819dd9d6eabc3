"""Procedural multi-view scenes with exact ground truth (RGB, depth, instance and class IDs, cameras).

seed -> layout (rooms, objects; NumPy, host) -> cameras (trajectories) -> batched ray casting on any
torch device -> Scene (iggt.structures.scene) or training batches (iggt.data.synthetic_stream).

Attributes load lazily: worker processes that only draw layouts never import torch.
"""

from iggt.lazy_exports import lazy_getattr

__all__ = [
    "BENCHMARKS",
    "RenderConfig",
    "SceneConfig",
    "generate_layout",
    "get_benchmark",
    "render_scenes",
    "sample_cameras",
]

__getattr__ = lazy_getattr(
    __name__,
    {
        "BENCHMARKS": "iggt.synth.benchmarks",
        "get_benchmark": "iggt.synth.benchmarks",
        "RenderConfig": "iggt.synth.config",
        "SceneConfig": "iggt.synth.config",
        "generate_layout": "iggt.synth.layout",
        "sample_cameras": "iggt.synth.cameras",
        "render_scenes": "iggt.synth.generate",
    },
)
