"""Curation: real captures (RGB-D + poses + 2D masks, labelled meshes, or plain videos) -> scenes in
the scene format with 3D-consistent instance IDs, for fine-tuning (docs/curation.md)."""
