"""Image-text backends behind one protocol: the shipped iggt-text, Hugging Face CLIP and SigLIP, OpenCLIP."""

from iggt.tasks.backends.base import DEFAULT_BACKEND, ImageTextBackend, backend_names, load_backend

__all__ = ["DEFAULT_BACKEND", "ImageTextBackend", "backend_names", "load_backend"]
