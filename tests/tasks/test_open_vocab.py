"""Mask pooling, crops, labelling and ranking against a backend with designed embeddings;
the segment and query commands end to end with a tiny real CLIP."""

import json

import numpy as np
import pytest
from colour_scene import BLUE, GREEN, RED, ColourBackend, colour_scene
from PIL import Image
from plyfile import PlyData
from tiny_models import save_tiny_clip, save_tiny_open_clip

from iggt.cli.main import main
from iggt.errors import InputError
from iggt.tasks.open_vocab import (
    OTHER,
    OpenVocabConfig,
    best_views,
    cell_coverage,
    instance_crop,
    instance_embeddings,
    parse_vocabulary,
    query,
    segment,
)
from iggt.tasks.result import load_result

VOCABULARY = ["red", "green", "blue"]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return load_result(colour_scene(tmp_path_factory.mktemp("colour") / "result"))


def unit(vector):
    vector = np.asarray(vector, float)
    return vector / np.linalg.norm(vector)


def test_mask_pooling_averages_every_mask_pixel_of_every_view(result):
    backend = ColourBackend()
    embeddings = instance_embeddings(result, backend, OpenVocabConfig(method="dense"))
    # instance 1: 64 red pixels in view 0 and 16 green ones in view 1
    np.testing.assert_allclose(embeddings[0], unit(64 * np.array(RED) + 16 * np.array(GREEN)), atol=1e-6)
    np.testing.assert_allclose(embeddings[1], BLUE, atol=1e-6)
    np.testing.assert_allclose(embeddings[2], unit([1, 1, 1]), atol=1e-6)
    assert backend.dense_calls == 2  # one dense pass per view, shared by its instances


def test_cell_coverage_counts_mask_pixels_per_cell():
    mask = np.zeros((10, 10), bool)
    mask[2:7, 1:9] = True
    coverage = cell_coverage(mask, (3, 3))
    assert coverage.shape == (3, 3)
    assert np.isclose(coverage.sum(), mask.sum(), rtol=1e-5)  # box resampling keeps the area
    assert coverage[2, 0] < coverage[1, 1]


def test_best_views_prefer_whole_objects_over_ones_cut_by_the_border(result):
    # instance 2: 64 pixels touching view 0's border (score 32) beat by 36 whole pixels in view 1
    assert best_views(result, 2, 3) == [1, 0]
    assert best_views(result, 1, 3) == [0, 1]
    assert best_views(result, 3, 3) == [1]


def test_labels_with_the_other_threshold(result):
    labels = segment(result, ColourBackend(), VOCABULARY, OpenVocabConfig(other_threshold=0.9))
    assert [(label.instance_id, label.label) for label in labels] == [(1, "red"), (2, "blue"), (3, OTHER)]
    assert [label.class_id for label in labels] == [1, 3, 4]
    assert labels[2].score == pytest.approx(1 / np.sqrt(3), abs=1e-6)
    assert [word for word, _ in labels[0].ranked] == ["red", "green", "blue"]
    lenient = segment(result, ColourBackend(), VOCABULARY, OpenVocabConfig(other_threshold=0.5))
    assert lenient[2].label == "red"  # grey is equally close to all three; the first word wins the tie


def test_crops_label_like_dense_pooling(result):
    backend = ColourBackend(dense=False)
    labels = segment(result, backend, VOCABULARY, OpenVocabConfig(other_threshold=0.9))
    assert [label.label for label in labels] == ["red", "blue", OTHER]
    assert backend.dense_calls == 0
    with pytest.raises(InputError, match="the colour backend has no dense features; use --method crops"):
        segment(result, backend, VOCABULARY, OpenVocabConfig(method="dense"))


def test_crops_average_the_best_views_weighted_by_their_scores(result):
    """Instance 1: red 8 x 8 in view 0 and green 4 x 4 in view 1, both touching the border (halved):
    scores 32 and 8. The crops grow by 2 and 1 pixels per side (black adds nothing to the mean
    colour), so view 0's crop also shows 2 x 2 pixels of the blue instance next to it."""
    crops = instance_embeddings(result, ColourBackend(dense=False), OpenVocabConfig(method="crops"))
    red_crop = unit(64 * np.array(RED) + 4 * np.array(BLUE))
    np.testing.assert_allclose(crops[0], unit(32 * red_crop + 8 * np.array(GREEN)), atol=1e-6)
    best_only = OpenVocabConfig(method="crops", crops_per_instance=1, crop_context=0)
    np.testing.assert_allclose(instance_embeddings(result, ColourBackend(dense=False), best_only)[0], RED, atol=1e-6)


def test_a_crop_keeps_context_around_the_mask_and_tends_to_a_square():
    image = np.arange(40 * 60 * 3).reshape(40, 60, 3)
    mask = np.zeros((40, 60), bool)
    mask[10:18, 20:36] = True  # 8 x 16 box
    # context 0.25: 2 rows and 4 columns per side -> 12 x 24, widened to a 24 x 24 square
    np.testing.assert_array_equal(instance_crop(image, mask, 0.25), image[2:26, 16:40])
    np.testing.assert_array_equal(instance_crop(image, mask, 0.0), image[6:22, 20:36])  # squared, no context
    corner = np.zeros((40, 60), bool)
    corner[0:8, 0:8] = True
    np.testing.assert_array_equal(instance_crop(image, corner, 0.25), image[0:10, 0:10])  # cut at the border


def test_query_ranks_instances_by_similarity(result):
    ranking = query(result, ColourBackend(), "something blue")
    assert [instance_id for instance_id, _ in ranking] == [2, 3, 1]
    assert [score for _, score in ranking] == pytest.approx([1, 1 / np.sqrt(3), 0], abs=1e-6)
    with pytest.raises(InputError, match="the query is empty"):
        query(result, ColourBackend(), "  ")


def test_vocabulary_parsing():
    assert parse_vocabulary(" chair, table,,sofa ") == ["chair", "table", "sofa"]
    with pytest.raises(InputError, match="the vocabulary is empty"):
        parse_vocabulary(" , ")
    with pytest.raises(InputError, match="must be distinct and not 'other'"):
        parse_vocabulary("chair,chair")


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module", params=["clip", "open_clip"])
def dense_backend(request, tmp_path_factory):
    """(name, folder) of a tiny real backend with dense features."""
    saver = save_tiny_clip if request.param == "clip" else save_tiny_open_clip
    return request.param, saver(tmp_path_factory.mktemp(request.param))


def test_segment_command_writes_consistent_maps_points_and_labels(result, dense_backend, tmp_path, capsys):
    name, folder = dense_backend
    out = tmp_path / "segment"
    argv = ["segment", str(result.folder), "--vocab", "chair,table,sofa", "--backend", name]
    assert main([*argv, "--backend-path", str(folder), "--other-threshold", "-1", "--out", str(out)]) == 0
    assert "Labelled 3 instances" in capsys.readouterr().out
    document = json.loads((out / "labels.json").read_text())
    assert document["backend"] == name and document["method"] == "dense"
    assert document["vocabulary"] == ["chair", "table", "sofa"]
    class_of = {row["id"]: row["class_id"] for row in document["instances"]}
    assert set(class_of) == {1, 2, 3} and set(class_of.values()) <= {1, 2, 3}  # threshold -1: never "other"
    for row in document["instances"]:
        assert row["label"] == document["classes"][str(row["class_id"])]
        assert [t["score"] for t in row["top"]] == sorted((t["score"] for t in row["top"]), reverse=True)
    assert json.loads((out / "label_table.json").read_text())["4"] == "other"
    for view in range(2):
        semantic_png = Image.open(out / "semantic" / f"semantic_{view:03d}.png")
        assert semantic_png.mode.startswith("I;16")  # 16-bit class IDs
        semantic = np.asarray(semantic_png)
        expected = np.vectorize(lambda i: class_of.get(int(i), 0))(result.instances.labels[view])
        np.testing.assert_array_equal(semantic, expected)
        assert Image.open(out / "semantic" / f"overlay_{view:03d}.png").size == (16, 16)
    vertices = PlyData.read(str(out / "points.ply"))["vertex"]
    assert len(vertices) > 0
    np.testing.assert_array_equal(vertices["label"], [class_of.get(int(i), 0) for i in vertices["instance_id"]])


def test_query_command_writes_ranking_views_and_points(result, clip_folder, tmp_path, capsys):
    out = tmp_path / "query"
    argv = ["query", str(result.folder), "a red chair", "--backend", "clip", "--backend-path", str(clip_folder)]
    assert main([*argv, "--top-k", "2", "--out", str(out)]) == 0
    document = json.loads((out / "ranking.json").read_text())
    scores = [row["score"] for row in document["instances"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 3
    shown = document["highlighted"]
    assert shown == [row["id"] for row in document["instances"][:2]]
    for view in range(2):
        path = out / "views" / f"highlight_{view:03d}.png"
        assert path.exists() == bool(np.isin(result.instances.labels[view], shown).any())
    assert set(PlyData.read(str(out / "points.ply"))["vertex"]["instance_id"]) <= set(shown)


def test_backend_options_that_cannot_load_say_what_to_pass(result, capsys):
    assert main(["query", str(result.folder), "chair", "--backend", "clip"]) == 2
    assert "the clip backend ships no weights; pass its model with --backend-path" in capsys.readouterr().err
    assert main(["segment", str(result.folder), "--vocab", "chair", "--backend-path", "models/clip"]) == 2
    assert "--backend-path models/clip needs --backend, e.g. --backend clip" in capsys.readouterr().err
