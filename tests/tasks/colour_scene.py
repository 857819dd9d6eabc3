"""A hand-made two-view export folder of coloured instances, and an image-text backend whose
embeddings are known: a colour's direction in RGB. It is a real implementation of the backend
protocol with designed embeddings (the thing under test is pooling and labelling, not a VLM)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from result_folder import write_result

SIZE, CELL = 16, 4
RED, GREEN, BLUE, GREY = (1.0, 0, 0), (0, 1.0, 0), (0, 0, 1.0), (0.5, 0.5, 0.5)
COLOUR_WORDS = {"red": RED, "green": GREEN, "blue": BLUE}


def _unit(vectors) -> np.ndarray:
    vectors = np.asarray(vectors, np.float64)
    return (vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


class ColourBackend:
    """Images embed as their mean colour; dense features are the mean colour of each 4 x 4 cell;
    a text embeds as the colour it names (the first colour word in it), grey when it names none."""

    name = "colour"

    def __init__(self, dense: bool = True) -> None:
        self.has_dense_features = dense
        self.dense_calls = 0

    def encode_images(self, images):
        return _unit([np.asarray(image, np.float64).reshape(-1, 3).mean(0) for image in images])

    def encode_texts(self, texts):
        def colour(text):
            words = [w.strip(".,") for w in text.lower().split()]
            return next((COLOUR_WORDS[w] for w in words if w in COLOUR_WORDS), GREY)

        return _unit([colour(text) for text in texts])

    def dense_features(self, image):
        self.dense_calls += 1
        height, width = image.shape[:2]
        cells = np.asarray(image, np.float64).reshape(height // CELL, CELL, width // CELL, CELL, 3).mean((1, 3))
        return _unit(cells)


def colour_scene(folder: Path) -> Path:
    """Two 16 x 16 views. Instance 1: red 8 x 8 in view 0, green 4 x 4 in view 1. Instance 2: blue
    8 x 8 at view 0's bottom-right border, and a smaller 6 x 6 blue patch inside view 1. Instance 3:
    grey 8 x 8 in view 1. Every region is made of whole 4 x 4 cells except instance 2's in view 1."""
    images = np.zeros((2, SIZE, SIZE, 3), np.float32)
    labels = np.zeros((2, SIZE, SIZE), np.int32)
    regions = [
        (0, slice(0, 8), slice(0, 8), 1, RED),
        (1, slice(0, 4), slice(0, 4), 1, GREEN),
        (0, slice(8, 16), slice(8, 16), 2, BLUE),
        (1, slice(9, 15), slice(9, 15), 2, BLUE),
        (1, slice(8, 16), slice(0, 8), 3, GREY),
    ]
    for view, rows, columns, instance_id, colour in regions:
        images[view, rows, columns] = colour
        labels[view, rows, columns] = instance_id
    depth = np.full((2, SIZE, SIZE), 2.0, np.float32)
    intrinsic = np.tile(np.array([[20, 0, 8], [0, 20, 8], [0, 0, 1]], np.float32), (2, 1, 1))
    extrinsic = np.tile(np.eye(3, 4, dtype=np.float32), (2, 1, 1))
    extrinsic[1, 0, 3] = -0.3
    v, u = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    camera = np.stack([(u - 8) / 20 * 2.0, (v - 8) / 20 * 2.0, np.full(u.shape, 2.0)], -1)
    points = np.stack([camera, camera - extrinsic[1, :, 3]]).astype(np.float32)
    confidence = np.ones((2, SIZE, SIZE), np.float32)
    features = np.ones((2, SIZE, SIZE, 1), np.float32)
    write_result(
        folder,
        images=images,
        extrinsic=extrinsic,
        intrinsic=intrinsic,
        depth=depth,
        points=points,
        confidence=confidence,
        features=features,
        labels=labels,
        pose_enc=np.zeros((2, 9), np.float32),
        formats=("npz", "json"),
    )
    return folder
