"""Reading inputs: image folders and files, videos, and scenes in the iggt scene format (docs/scene_format.md)."""
