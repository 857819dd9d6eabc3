"""Image-text backends behind one protocol: Hugging Face CLIP and SigLIP, OpenCLIP."""

from iggt.tasks.backends.base import ImageTextBackend, backend_names, load_backend

__all__ = ["ImageTextBackend", "backend_names", "load_backend"]
