"""Templated captions of engine instances, the word-level tokenizer, and which captions fit which crop.

A caption names some of an instance's attributes (class, colour, size, shape; see
:mod:`iggt.tasks.text_model.attributes`), e.g. "a photo of a small red ball." or "something blue".
It is stored as the attribute indices it mentions (-1 = not mentioned), so a crop *fits* a caption
when every mentioned attribute equals the crop's: the training targets of the contrastive loss.

The tokenizer lower-cases, splits on anything but letters, and maps each word to its index in the
vocabulary (every word the templates can produce, ``build_vocabulary``); words it never saw map to
UNK. The vocabulary is saved with the weights.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from iggt.synth.catalog import CLASS_NAMES
from iggt.tasks.text_model.attributes import COLOURS, NONE, SHAPES, SIZES

PAD, UNK = "<pad>", "<unk>"
MAX_TOKENS = 12
CLASS_SYNONYMS = {
    "sofa": ("couch",), "rug": ("carpet",), "picture": ("painting",), "bin": ("trash can", "basket"),
    "box": ("crate",), "ball": ("sphere",), "lamp": ("floor lamp",), "plant": ("potted plant",),
    "pillar": ("column",), "cabinet": ("cupboard",), "shelf": ("bookshelf",),
}  # fmt: skip
PREFIXES = ("a photo of a", "a photo of the", "a", "the", "", "there is a", "an image of a")
COLOUR_ONLY = ("a {} object", "something {}", "the {} thing", "{}")
_WORD = re.compile(r"[a-z]+")


def build_vocabulary() -> list[str]:
    """Every word a template can produce, PAD and UNK first; sorted, so the same on every run."""
    texts = [*CLASS_NAMES, *COLOURS, *SIZES, *SHAPES, *PREFIXES, *COLOUR_ONLY, "object thing"]
    texts += [word for synonyms in CLASS_SYNONYMS.values() for word in synonyms]
    words = {word for text in texts for word in _WORD.findall(text.lower())}
    return [PAD, UNK, *sorted(words)]


def tokenize(texts: Sequence[str], vocabulary: Sequence[str]) -> np.ndarray:
    """T texts -> (T, MAX_TOKENS) int64 word indices, 0-padded (longer texts are cut); unknown words -> UNK."""
    index = {word: position for position, word in enumerate(vocabulary)}
    tokens = np.zeros((len(texts), MAX_TOKENS), dtype=np.int64)
    for row, text in enumerate(texts):
        words = _WORD.findall(text.lower())[:MAX_TOKENS] or [UNK]
        tokens[row, : len(words)] = [index.get(word, index[UNK]) for word in words]
    return tokens


def random_caption(attributes: Sequence[int], rng: np.random.Generator) -> tuple[str, tuple[int, int, int, int]]:
    """A caption of an instance with (class, colour, size, shape) indices, and the indices it mentions."""
    class_index, colour, size, shape = attributes
    if colour != NONE and rng.random() < 0.12:
        return COLOUR_ONLY[rng.integers(len(COLOUR_ONLY))].format(COLOURS[colour]), (NONE, colour, NONE, NONE)
    mention_colour = colour != NONE and rng.random() < 0.5
    mention_size = size != NONE and rng.random() < 0.25
    mention_shape = shape != NONE and rng.random() < 0.2
    name = CLASS_NAMES[class_index]
    if name in CLASS_SYNONYMS and rng.random() < 0.2:
        name = CLASS_SYNONYMS[name][rng.integers(len(CLASS_SYNONYMS[name]))]
    words = [
        SIZES[size] if mention_size else "",
        COLOURS[colour] if mention_colour else "",
        SHAPES[shape] if mention_shape else "",
        name,
    ]
    prefix = PREFIXES[0] if rng.random() < 0.4 else PREFIXES[rng.integers(len(PREFIXES))]
    text = " ".join(part for part in (prefix, *words) if part) + ("." if rng.random() < 0.5 else "")
    mentioned = (
        class_index,
        colour if mention_colour else NONE,
        size if mention_size else NONE,
        shape if mention_shape else NONE,
    )
    return text, mentioned


def fits(crop_attributes: np.ndarray, mentioned: np.ndarray) -> np.ndarray:
    """(N, 4) crop attributes, (T, 4) mentioned attributes -> (N, T) bool: every mentioned one matches."""
    agree = crop_attributes[:, None, :] == mentioned[None, :, :]
    return ((mentioned[None] == NONE) | agree).all(-1)
