"""Images -> the network -> Predictions, and the whole pipeline behind ``iggt.reconstruct``."""

from iggt.inference.preprocess import ResizeRecord, map_to_original, preprocess_images
from iggt.inference.reconstruct import Reconstruction, reconstruct
from iggt.inference.runner import run_model

__all__ = [
    "Reconstruction",
    "ResizeRecord",
    "map_to_original",
    "preprocess_images",
    "reconstruct",
    "run_model",
]
