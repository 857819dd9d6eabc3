"""The COCO RLE codec: round trips, the reference encoding of a known mask, and corrupt inputs."""

import numpy as np
import pytest

from iggt.curate.rle import RLEError, decode_counts_string, decode_rle, encode_counts_string, encode_rle


def test_random_masks_round_trip():
    rng = np.random.default_rng(0)
    for shape in [(1, 1), (7, 5), (40, 33)]:
        for density in (0.0, 0.3, 1.0):
            mask = rng.random(shape) < density
            assert np.array_equal(decode_rle(encode_rle(mask)), mask)


def test_column_major_runs_of_a_known_mask():
    # 3 x 2 mask, column-major: [0, 1, 1 | 1, 0, 0] -> runs 1 zero, 3 ones, 2 zeros
    mask = np.array([[0, 1], [1, 0], [1, 0]], dtype=bool)
    assert decode_rle({"size": [3, 2], "counts": [1, 3, 2]}).tolist() == mask.tolist()
    assert decode_counts_string(encode_rle(mask)["counts"]) == [1, 3, 2]


def test_compressed_string_uses_deltas_and_signs():
    counts = [5, 100, 3, 90, 2000, 0, 7]  # later runs stored as (possibly negative) differences
    assert decode_counts_string(encode_counts_string(counts)) == counts
    assert encode_counts_string([1, 3, 2]) == "132"  # small runs are single digits offset by '0'


@pytest.mark.parametrize(
    "rle, message",
    [
        ({"size": [2, 2], "counts": [1, 1]}, "cover 2 pixels but size 2 x 2 has 4"),
        ({"size": [2, 2], "counts": "1 "}, "is not a compressed-RLE digit"),
        ({"size": [2, 2], "counts": "1a"}, "end in the middle of a number"),
        ({"size": [2, 2], "counts": [2, -1, 3]}, "negative run length"),
        ({"counts": "12"}, "must be an object with 'size'"),
        ({"size": "big", "counts": "12"}, "is not \\[H, W\\]"),
    ],
)
def test_corrupt_rle_is_refused_with_the_reason(rle, message):
    with pytest.raises(RLEError, match=message):
        decode_rle(rle)
