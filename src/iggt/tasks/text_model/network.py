"""The iggt-text network: a small CNN over instance crops and a word-pooling text tower, one joint space.

Image tower: a crop (any size) is resized to ``INPUT_SIZE`` x ``INPUT_SIZE`` (:func:`crops_to_tensor`),
then four conv-BN-ReLU stages (each ending in a 2 x 2 max pool), global average pooling and a linear map.
Text tower: word embeddings averaged with learned per-word weights (a softmax over the caption's
words, so filler words such as "a photo of" can be ignored), then a two-layer MLP. Both outputs are
L2-normalised; ``logit_scale`` is the learned CLIP temperature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

INPUT_SIZE = 32
_MEAN, _STD = 0.45, 0.25


@dataclass(frozen=True)
class TextModelConfig:
    """Sizes of the two towers (saved with the weights)."""

    vocabulary_size: int
    embed_dim: int = 128
    """Dimension of the joint space."""
    widths: tuple[int, ...] = (24, 48, 96, 160)
    """Channels of the four conv stages (one conv in the first, two in the others)."""
    word_dim: int = 128

    def to_dict(self) -> dict:
        return asdict(self)


def resized_crop(crop: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 -> (INPUT_SIZE, INPUT_SIZE, 3) uint8: the one resize of training and inference."""
    image = Image.fromarray(crop).resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(image)


def crops_to_tensor(crops: Sequence[np.ndarray]) -> torch.Tensor:
    """N (h, w, 3) uint8 crops -> (N, 3, INPUT_SIZE, INPUT_SIZE) float32, normalised."""
    return uint8_to_input(torch.from_numpy(np.stack([resized_crop(crop) for crop in crops])))


def uint8_to_input(batch: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 normalised network input."""
    return (batch.permute(0, 3, 1, 2).float() / 255.0 - _MEAN) / _STD


class ImageTower(nn.Module):
    def __init__(self, config: TextModelConfig) -> None:
        super().__init__()
        layers, channels = [], 3
        for stage, width in enumerate(config.widths):
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
            if stage > 0:  # full resolution gets one conv: it costs the most per channel
                layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
            layers.append(nn.MaxPool2d(2))
            channels = width
        self.features = nn.Sequential(*layers)
        self.projection = nn.Linear(channels, config.embed_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, INPUT_SIZE, INPUT_SIZE) -> (N, embed_dim) unit norm."""
        pooled = self.features(images).mean((2, 3))
        return nn.functional.normalize(self.projection(pooled), dim=-1)


class TextTower(nn.Module):
    def __init__(self, config: TextModelConfig) -> None:
        super().__init__()
        self.embedding = nn.Embedding(config.vocabulary_size, config.word_dim, padding_idx=0)
        self.word_weight = nn.Embedding(config.vocabulary_size, 1)
        self.mlp = nn.Sequential(
            nn.Linear(config.word_dim, 2 * config.word_dim), nn.ReLU(), nn.Linear(2 * config.word_dim, config.embed_dim)
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(T, L) word indices, 0 = padding -> (T, embed_dim) unit norm."""
        logits = self.word_weight(tokens)[..., 0].masked_fill(tokens == 0, float("-inf"))
        weights = torch.softmax(logits, dim=-1)
        pooled = torch.einsum("tl,tld->td", weights, self.embedding(tokens))
        return nn.functional.normalize(self.mlp(pooled), dim=-1)


class TextModel(nn.Module):
    def __init__(self, config: TextModelConfig) -> None:
        super().__init__()
        self.config = config
        self.image = ImageTower(config)
        self.text = TextTower(config)
        self.logit_scale = nn.Parameter(torch.tensor(float(np.log(10.0))))
