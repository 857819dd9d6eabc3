"""The parts of iggt-text: attribute words, captions and their targets, the tokenizer, the weights file."""

import numpy as np
import pytest
import torch

from iggt.errors import CheckpointError
from iggt.synth.catalog import CLASS_NAMES
from iggt.tasks.text_model.attributes import COLOURS, NONE, dominant_colour, size_index
from iggt.tasks.text_model.captions import MAX_TOKENS, UNK, build_vocabulary, fits, random_caption, tokenize
from iggt.tasks.text_model.network import TextModel, TextModelConfig
from iggt.tasks.text_model.weights import load_text_model, save_text_model


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((220, 30, 30), "red"), ((230, 140, 20), "orange"), ((120, 70, 20), "brown"), ((220, 210, 40), "yellow"),
        ((40, 180, 60), "green"), ((40, 80, 220), "blue"), ((140, 50, 200), "purple"), ((230, 60, 170), "pink"),
        ((240, 240, 235), "white"), ((120, 120, 125), "grey"), ((20, 15, 25), "black"),
    ],
)  # fmt: skip
def test_colour_names_follow_hue_saturation_and_value(rgb, name):
    assert COLOURS[dominant_colour(np.array([rgb] * 5, np.uint8))] == name


def test_an_instance_without_a_dominant_colour_has_none():
    half_red_half_blue = np.array([(220, 30, 30)] * 5 + [(40, 80, 220)] * 5 + [(40, 180, 60)] * 4, np.uint8)
    assert dominant_colour(half_red_half_blue) == NONE


def test_sizes_follow_the_diagonal_of_the_point_box():
    rng = np.random.default_rng(0)
    assert size_index(rng.uniform(0, 0.2, (200, 3))) == 0
    assert size_index(rng.uniform(0, 0.5, (200, 3))) == 1
    assert size_index(rng.uniform(0, 2.0, (200, 3))) == 2


def test_a_caption_fits_every_crop_that_has_the_attributes_it_names():
    crops = np.array([[4, 0, 1, NONE], [4, 3, 1, NONE], [5, 0, 2, 2]])  # red chair, green chair, red cabinet
    mentioned = np.array([[4, NONE, NONE, NONE], [NONE, 0, NONE, NONE], [4, 0, NONE, NONE]])  # chair, red, red chair
    expected = [[True, True, True], [True, False, False], [False, True, False]]
    np.testing.assert_array_equal(fits(crops, mentioned), expected)


def test_random_captions_name_only_the_attributes_they_report():
    rng = np.random.default_rng(3)
    vocabulary = build_vocabulary()
    for _ in range(200):
        attributes = (int(rng.integers(len(CLASS_NAMES))), int(rng.integers(-1, len(COLOURS))), 1, NONE)
        text, mentioned = random_caption(attributes, rng)
        assert fits(np.array([attributes]), np.array([mentioned]))[0, 0]
        assert UNK not in [vocabulary[t] for t in tokenize([text], vocabulary)[0]]  # templates use known words only
        if mentioned[1] != NONE:
            assert COLOURS[mentioned[1]] in text


def test_tokenizer_pads_cuts_and_maps_unknown_words():
    vocabulary = build_vocabulary()
    tokens = tokenize(["A Red, chair!", "zebra " * 20, ""], vocabulary)
    assert tokens.shape == (3, MAX_TOKENS)
    assert [vocabulary[t] for t in tokens[0, :3]] == ["a", "red", "chair"] and (tokens[0, 3:] == 0).all()
    assert (tokens[1] == vocabulary.index(UNK)).all()
    assert tokens[2, 0] == vocabulary.index(UNK)  # an empty text is one unknown word, never all padding


def test_weights_round_trip_and_bad_files_are_refused(tmp_path):
    vocabulary = build_vocabulary()
    torch.manual_seed(0)
    model = TextModel(TextModelConfig(vocabulary_size=len(vocabulary))).eval()
    save_text_model(model, vocabulary, tmp_path / "m.safetensors", {"seed": 0})
    loaded, loaded_vocabulary = load_text_model(tmp_path / "m.safetensors")
    assert loaded_vocabulary == vocabulary
    tokens = torch.from_numpy(tokenize(["a red chair", "the wall"], vocabulary))
    # float16 storage: the unit-norm embeddings move by about 1e-3 at most
    torch.testing.assert_close(loaded.text(tokens), model.text(tokens), atol=5e-3, rtol=0)
    with pytest.raises(CheckpointError, match="do not exist"):
        load_text_model(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="cannot read iggt-text weights"):
        load_text_model(tmp_path / "junk.safetensors")
