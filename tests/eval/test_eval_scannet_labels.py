"""Class names for ScanNet-format label maps: ScanNet's label table and plain class-name files."""

import numpy as np
import pytest

from iggt.errors import SceneFormatError
from iggt.eval.scannet_labels import read_class_names, read_scannet_label_table
from iggt.eval.scannet_reader import read_scannet_scene

HEADER = "id\traw_category\tcategory\tcount\tnyu40id\teigen13id\tnyuClass\tnyu40class\teigen13class"


def write_table(path, rows, header=HEADER):
    """ScanNet's column layout; each row (id, raw_category, nyu40id, nyu40class)."""
    lines = [header] + [f"{i}\t{raw}\t{raw}\t1\t{nyu}\t1\t{raw}\t{name}\tx" for i, raw, nyu, name in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_label_table_maps_raw_ids_to_nyu40_classes(tmp_path):
    table = read_scannet_label_table(
        write_table(
            tmp_path / "labels.tsv",
            [
                (11, "chair", 5, "chair"),
                (12, "office chair", 5, "chair"),
                (13, "desk", 14, "desk"),
                (14, "rug", "", ""),
            ],
        )
    )
    assert table.class_of == {11: 5, 12: 5, 13: 14} and table.names == {5: "chair", 14: "desk"}
    assert table.source == "labels.tsv"
    # two raw categories of one NYU40 class merge; an ID without a class (or unknown) is unlabelled
    np.testing.assert_array_equal(table.apply(np.array([[11, 12, 13], [14, 0, 99]])), [[5, 5, 14], [0, 0, 0]])


def test_a_class_name_file_names_the_ids_as_they_are(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("# ids of label/\n11 box\n\n12 ball\n13 traffic cone\n")
    table = read_class_names(path)
    assert table.names == {11: "box", 12: "ball", 13: "traffic cone"}
    np.testing.assert_array_equal(table.apply(np.array([0, 11, 13, 7])), [0, 11, 13, 0])


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        ([], "id\tname", r"is not ScanNet's label table: its header has no column nyu40id, nyu40class \(expected"),
        ([("x", "chair", 5, "chair")], HEADER, r"labels.tsv line 2: id 'x' is not an integer"),
        ([(11, "chair", "five", "chair")], HEADER, r"line 2: nyu40id 'five' is not an integer"),
        ([(11, "chair", 5, "chair"), (11, "seat", 5, "chair")], HEADER, r"line 3: id 11 is listed twice"),
        ([(11, "chair", 5, "chair"), (12, "sofa", 5, "sofa")], HEADER, r"line 3: nyu40id 5 is named 'sofa' here but"),
        ([(11, "rug", 0, "")], HEADER, r"maps no id to a NYU40 class"),
    ],
    ids=["columns", "id", "nyu40id", "duplicate", "two-names", "no-class"],
)
def test_a_malformed_label_table_is_one_line(tmp_path, rows, header, message):
    with pytest.raises(SceneFormatError, match=message) as caught:
        read_scannet_label_table(write_table(tmp_path / "labels.tsv", rows, header))
    assert "\n" not in str(caught.value)


def test_a_short_row_and_a_missing_table_are_one_line(tmp_path):
    path = tmp_path / "labels.tsv"
    path.write_text(HEADER + "\n11\tchair\n")
    with pytest.raises(SceneFormatError, match=r"labels.tsv line 2: 2 tab-separated fields, the header has 9"):
        read_scannet_label_table(path)
    with pytest.raises(SceneFormatError, match=r"cannot read the ScanNet label table .*missing.tsv"):
        read_scannet_label_table(tmp_path / "missing.tsv")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("11\n", r"line 1: '11' is not '<id> <name>'"),
        ("eleven box\n", r"line 1: id 'eleven' is not an integer"),
        ("0 nothing\n", r"line 1: id 0 must be at least 1 \(0 is unlabelled\)"),
        ("11 box\n11 ball\n", r"line 2: id 11 is listed twice"),
        ("# only a comment\n", r"names no class; write one '<id> <name>' per line"),
    ],
    ids=["no-name", "id", "zero", "duplicate", "empty"],
)
def test_a_malformed_class_name_file_is_one_line(tmp_path, text, message):
    path = tmp_path / "classes.txt"
    path.write_text(text)
    with pytest.raises(SceneFormatError, match=message):
        read_class_names(path)


def test_the_reader_names_the_classes_of_the_label_maps(make_scene, write_scannet, tmp_path):
    scene = make_scene(num_views=2)  # label maps hold 11, 12, 13
    write_scannet(scene, tmp_path / "scene", stems=["0", "1"])
    table = read_scannet_label_table(
        write_table(
            tmp_path / "labels.tsv", [(11, "chair", 5, "chair"), (12, "armchair", 5, "chair"), (13, "lamp", 35, "lamp")]
        )
    )
    read = read_scannet_scene(tmp_path / "scene", classes=table)
    assert read.class_names == {5: "chair", 35: "lamp"}
    np.testing.assert_array_equal(read.class_ids, np.select([scene.class_ids == 13, scene.class_ids > 0], [35, 5], 0))
    unnamed = read_scannet_scene(tmp_path / "scene")
    assert unnamed.class_names == {} and set(np.unique(unnamed.class_ids)) == {0, 11, 12, 13}


def test_a_named_scannet_scene_gets_semantic_rows(make_scene, write_scannet, tmp_path):
    """Exact predictions (in another frame) of a ScanNet-format scene read with a label table: the
    oracle scores 1 in 2D and 3D over the table's classes, one class for everything scores less."""
    from test_eval_benchmark import exact_setup

    from iggt.eval.benchmark import BenchmarkConfig, evaluate_scene
    from iggt.eval.semantic import oracle_labeller

    write_scannet(make_scene(num_views=3), tmp_path / "scene", stems=["0", "1", "2"])
    rows = [(11, "chair", 5, "chair"), (12, "table", 7, "table"), (13, "lamp", 35, "lamp")]
    scene = read_scannet_scene(
        tmp_path / "scene", classes=read_scannet_label_table(write_table(tmp_path / "t.tsv", rows))
    )
    config = BenchmarkConfig(img_size=56, patch_size=14, tasks=("semantic",))
    predict, segmenters = exact_setup(scene, config)

    def all_chairs(predictions, labels, truth, names):
        return {int(i): 5 for i in np.unique(labels) if i > 0}

    labellers = {"oracle classes": oracle_labeller, "all chairs": all_chairs}
    result = {row["method"]: row for row in evaluate_scene(scene, "s", predict, segmenters, config, labellers)}
    for key in ("miou_2d", "macc_2d", "miou_3d", "macc_3d"):
        assert result["oracle classes"][key] == pytest.approx(1.0), key
    assert result["all chairs"]["macc_2d"] == pytest.approx(1 / 3)
