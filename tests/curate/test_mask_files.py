"""Reading per-frame masks: PNG label images, COCO RLE JSON, SA-V masklets, and malformed files."""

import json

import numpy as np
import pytest
from PIL import Image

from iggt.curate.mask_files import paint_masks, read_frame_masks
from iggt.curate.rle import encode_rle
from iggt.errors import InputError

SIZE = (6, 8)


def _square(top, left, side=3):
    mask = np.zeros(SIZE, dtype=bool)
    mask[top : top + side, left : left + side] = True
    return mask


def test_smaller_masks_stay_on_top_of_larger_ones():
    whole, part = _square(0, 0, 5), _square(1, 1, 2)
    painted = paint_masks([part, whole], ["part", "whole"], SIZE)
    assert painted.sources == ["whole", "part"]
    assert (painted.labels == 2).sum() == 4 and (painted.labels == 1).sum() == 21


def test_png_labels_json_rle_and_masklets_give_the_same_partition(tmp_path):
    a, b = _square(0, 0), _square(2, 4)
    Image.fromarray((a * 7 + b * 200).astype(np.uint8)).save(tmp_path / "f0.png")
    (tmp_path / "f1.json").write_text(json.dumps([{"segmentation": encode_rle(a)}, {"segmentation": encode_rle(b)}]))
    from_png, from_json = read_frame_masks(tmp_path, ["f0", "f1"], SIZE)
    masklets = tmp_path / "auto_masks.json"
    empty = encode_rle(np.zeros(SIZE, dtype=bool))
    masklets.write_text(
        json.dumps({"masklet": [[encode_rle(a), encode_rle(b)], [empty, encode_rle(b)]], "masklet_id": [3, 9]})
    )
    first, second = read_frame_masks(masklets, ["f0", "f1"], SIZE)
    for masks in (from_png, from_json, first):
        assert masks.count == 2
        assert {frozenset(np.flatnonzero(masks.labels == k)) for k in (1, 2)} == {
            frozenset(np.flatnonzero(a)),
            frozenset(np.flatnonzero(b)),
        }
    assert second.count == 1 and second.sources == ["auto_masks.json frame f1 masklet 9"]
    assert from_png.sources[0].endswith("f0.png label 7")


def test_rgb_label_images_use_one_mask_per_colour(tmp_path):
    image = np.zeros(SIZE + (3,), dtype=np.uint8)
    image[_square(0, 0)] = (255, 0, 0)
    image[_square(3, 4)] = (0, 0, 255)
    Image.fromarray(image).save(tmp_path / "f0.png")
    assert read_frame_masks(tmp_path, ["f0"], SIZE)[0].count == 2


def _write(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content) if isinstance(content, str) else Image.fromarray(content).save(path)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("f0.png", np.zeros((5, 8), np.uint8), "frame f0: masks/f0.png is 5x8 but the frame is 6x8"),
        ("f0.json", json.dumps([{"size": [6, 8], "counts": "!!"}]), "frame f0: masks/f0.json mask 1 is corrupt RLE"),
        ("f0.json", json.dumps([encode_rle(np.zeros(SIZE, bool))]), "frame f0: masks/f0.json mask 1 is empty"),
        ("f0.json", json.dumps([encode_rle(np.ones((4, 4), bool))]), "mask 1 is 4x4 but the frame is 6x8"),
        ("f0.json", "{not json", "frame f0: masks/f0.json is not readable JSON"),
        ("f0.png", "not a png", "frame f0: masks/f0.png is unreadable"),
        ("other.png", np.zeros(SIZE, np.uint8), "frame f0: no masks file masks/f0.png or f0.json"),
    ],
)
def test_malformed_mask_files_name_the_frame_and_file(tmp_path, name, content, message):
    folder = tmp_path / "masks"
    folder.mkdir()
    _write(folder, name, content)
    with pytest.raises(InputError, match=message):
        read_frame_masks(folder, ["f0"], SIZE)


def test_masklets_for_the_wrong_number_of_frames_are_refused(tmp_path):
    path = tmp_path / "auto_masks.json"
    path.write_text(json.dumps({"masklet": [[encode_rle(_square(0, 0))]]}))
    with pytest.raises(InputError, match="masklets for 1 frames but the capture has 2"):
        read_frame_masks(path, ["f0", "f1"], SIZE)
