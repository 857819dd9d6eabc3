"""COCO run-length encoding (RLE) of binary masks, as SAM, SAM 2 and SA-V save them.

A mask of (H, W) is flattened in column-major order (down the first column, then the next) into
alternating runs of 0s and 1s, starting with a run of 0s (possibly empty). ``counts`` is either
that list of run lengths or COCO's compressed string: each run length, minus the one two places
earlier from the fourth run on, written as 5-bit groups (least significant first) in characters
offset by 48, bit 0x20 meaning "another group follows" and bit 0x10 of the last group the sign.
"""

from __future__ import annotations

import numpy as np

_OFFSET = 48


class RLEError(ValueError):
    """A run-length encoding that cannot be decoded; the message says what is wrong with it."""


def decode_counts_string(text: str) -> list[int]:
    """Run lengths from COCO's compressed counts string."""
    counts: list[int] = []
    position = 0
    while position < len(text):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(text):
                raise RLEError("compressed counts end in the middle of a number")
            code = ord(text[position]) - _OFFSET
            if not 0 <= code < 64:
                raise RLEError(f"character {text[position]!r} at {position} is not a compressed-RLE digit")
            value |= (code & 0x1F) << shift
            more = bool(code & 0x20)
            position += 1
            shift += 5
            if not more and code & 0x10:
                value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def encode_counts_string(counts: list[int]) -> str:
    """COCO's compressed string of run lengths (the inverse of :func:`decode_counts_string`)."""
    characters = []
    for index, count in enumerate(counts):
        value = count - counts[index - 2] if index > 2 else count
        more = True
        while more:
            code = value & 0x1F
            value >>= 5
            more = value != -1 if code & 0x10 else value != 0
            if more:
                code |= 0x20
            characters.append(chr(code + _OFFSET))
    return "".join(characters)


def decode_rle(rle: dict) -> np.ndarray:
    """(H, W) bool mask from ``{"size": [H, W], "counts": str | list[int]}``; raises RLEError."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise RLEError("an RLE must be an object with 'size' [H, W] and 'counts'")
    try:
        height, width = (int(side) for side in rle["size"])
    except (TypeError, ValueError) as exc:
        raise RLEError(f"RLE size {rle['size']!r} is not [H, W]") from exc
    raw = rle["counts"]
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", errors="replace")
    if isinstance(raw, str):
        counts = decode_counts_string(raw)
    elif isinstance(raw, list) and all(isinstance(c, int) for c in raw):
        counts = list(raw)
    else:
        raise RLEError("RLE counts must be a compressed string or a list of integers")
    if any(c < 0 for c in counts):
        raise RLEError("RLE has a negative run length")
    if sum(counts) != height * width:
        raise RLEError(f"RLE runs cover {sum(counts)} pixels but size {height} x {width} has {height * width}")
    values = np.arange(len(counts)) % 2 == 1
    flat = np.repeat(values, counts)
    return flat.reshape(width, height).T.copy()


def encode_rle(mask: np.ndarray) -> dict:
    """COCO RLE with a compressed counts string of a (H, W) bool mask."""
    flat = np.asarray(mask, dtype=bool).T.reshape(-1)
    changes = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": encode_counts_string(counts)}
