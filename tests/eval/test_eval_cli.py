"""`iggt eval` end to end: a tiny-preset model over a tiny ScanNet-style dataset, reports re-read."""

import csv
import json

import pytest
import torch

from iggt.cli.main import main
from iggt.eval.report import TASK_COLUMNS
from iggt.instances.assignment import nearest_centre
from iggt.model.iggt import IGGT


@pytest.fixture
def tiny_model_file(tmp_path):
    return IGGT.from_preset("tiny").save_pretrained(tmp_path / "tiny.safetensors")


def test_eval_command_writes_every_report(make_scene, write_scannet, tiny_model_file, tmp_path, capsys):
    data = tmp_path / "data"
    for index in range(2):
        write_scannet(make_scene(num_views=3, seed=index), data / f"scene{index:04d}_00", stems=["0", "1", "2"])
    out = tmp_path / "report"
    argv = ["eval", "--data", str(data), "--model", str(tiny_model_file), "--out", str(out)]
    assert main([*argv, "--device", "cpu", "--views", "2", "--quiet"]) == 0
    with open(out / "per_scene.csv") as handle:
        rows = list(csv.DictReader(handle))
    default_tasks = ("depth", "points", "cameras", "instances")
    metric_columns = [column for task in default_tasks for column in TASK_COLUMNS[task]]
    assert list(rows[0]) == ["scene", "method", "num_views", *metric_columns, "seconds"]
    assert [(row["scene"], row["method"]) for row in rows] == [
        ("scene0000_00", "tiny"),
        ("scene0000_00", "xyzrgb baseline"),
        ("scene0001_00", "tiny"),
        ("scene0001_00", "xyzrgb baseline"),
    ]
    model_row = rows[0]
    for column in metric_columns:
        assert model_row[column] != "", column  # every metric is defined for the model
    assert 0 <= float(model_row["t_miou"]) <= 1 and float(model_row["abs_rel"]) >= 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_scenes"] == 2 and summary["data_format"] == "scannet"
    assert summary["tasks"] == ["depth", "points", "cameras", "instances"]
    assert {"iggt", "torch", "numpy", "scipy"} <= set(summary["versions"]) and summary["device"].startswith("cpu")
    assert summary["model"] == str(tiny_model_file)
    assert set(summary["metrics"]) == {"tiny", "xyzrgb baseline"}
    table = (out / "results.md").read_text()
    assert "xyzrgb baseline" in table and "t_miou (%)" in table
    assert "reports written to" in capsys.readouterr().out


def test_eval_command_reads_the_scene_format(make_scene, tiny_model_file, tmp_path):
    from iggt.io.scene_format import write_scene

    write_scene(make_scene(num_views=4), tmp_path / "data" / "kitchen")
    out = tmp_path / "report"
    argv = ["eval", "--data", str(tmp_path / "data"), "--model", str(tiny_model_file), "--out", str(out)]
    assert main([*argv, "--device", "cpu", "--views", "3", "--tasks", "depth,instances", "--quiet"]) == 0
    with open(out / "per_scene.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[3:-1] == [*TASK_COLUMNS["depth"], *TASK_COLUMNS["instances"]]
    assert [(row["scene"], row["num_views"]) for row in rows] == [("kitchen", "3"), ("kitchen", "3")]
    assert json.loads((out / "summary.json").read_text())["data_format"] == "scene"


def test_eval_command_adds_a_row_per_image_text_backend_and_the_oracle(make_scene, tiny_model_file, tmp_path):
    from dataclasses import replace

    from iggt.io.scene_format import write_scene
    from iggt.tasks.backends.iggt_text import SHIPPED_WEIGHTS

    scene = replace(make_scene(num_views=3), class_names={11: "box", 12: "ball", 13: "cone"})
    write_scene(scene, tmp_path / "data" / "room")
    out = tmp_path / "report"
    argv = ["eval", "--data", str(tmp_path / "data"), "--model", str(tiny_model_file), "--out", str(out)]
    backends = ["--vl-backend", "iggt-text", "--vl-backend", f"iggt-text:{SHIPPED_WEIGHTS}"]
    assert main([*argv, "--device", "cpu", "--tasks", "semantic", *backends, "--quiet"]) == 0
    with open(out / "per_scene.csv") as handle:
        rows = {row["method"]: row for row in csv.DictReader(handle)}
    assert list(rows) == ["tiny", "iggt-text", f"iggt-text:{SHIPPED_WEIGHTS}", "oracle classes"]
    assert rows["iggt-text"]["miou_2d"] == rows[f"iggt-text:{SHIPPED_WEIGHTS}"]["miou_2d"]  # the same weights
    for method in list(rows)[1:]:
        assert all(0 <= float(rows[method][key]) <= 1 for key in TASK_COLUMNS["semantic"])
    # one class per predicted instance: the oracle does at least as well as any backend in 2D accuracy
    assert float(rows["oracle classes"]["macc_2d"]) >= float(rows["iggt-text"]["macc_2d"])
    assert json.loads((out / "summary.json").read_text())["vl_backends"] == list(rows)[1:]


def test_eval_command_reports_bad_arguments(tmp_path, capsys):
    assert main(["eval", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_eval_command_rejects_unknown_tasks_before_loading_a_model(make_scene, write_scannet, tmp_path, capsys):
    write_scannet(make_scene(num_views=2), tmp_path / "data" / "scene", stems=["0", "1"])
    argv = ["eval", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "r"), "--model", "missing.pt"]
    assert main([*argv, "--tasks", "depth,normals"]) == 2
    assert "normals" in capsys.readouterr().err


def test_eval_on_the_cpu_clusters_instances_on_the_cpu_while_a_gpu_is_visible(
    make_scene, write_scannet, tiny_model_file, tmp_path, monkeypatch
):
    """`--device cpu` reaches the instance step: no stage may pick a visible GPU on its own."""
    from iggt.instances import clustering

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on a GPU machine
    devices = []

    def recording_nearest_centre(vectors, centres, max_distance, device, chunk_size):
        devices.append(device)
        return nearest_centre(vectors, centres, max_distance, device, chunk_size)

    monkeypatch.setattr(clustering, "nearest_centre", recording_nearest_centre)
    write_scannet(make_scene(num_views=2), tmp_path / "data" / "scene0000_00", stems=["0", "1"])
    argv = ["eval", "--data", str(tmp_path / "data"), "--model", str(tiny_model_file), "--out", str(tmp_path / "r")]
    assert main([*argv, "--device", "cpu", "--tasks", "instances", "--quiet"]) == 0
    assert devices and set(devices) == {torch.device("cpu")}  # the model's and the baseline's clustering
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["instance_config"]["device"] == "cpu"


def test_eval_command_rejects_an_unknown_image_text_backend(make_scene, write_scannet, tmp_path, capsys):
    write_scannet(make_scene(num_views=2), tmp_path / "data" / "scene", stems=["0", "1"])
    (tmp_path / "classes.txt").write_text("11 box\n12 ball\n13 cone\n")
    argv = ["eval", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "r"), "--model", "missing.pt"]
    argv += ["--tasks", "semantic", "--class-names", str(tmp_path / "classes.txt")]
    assert main([*argv, "--vl-backend", "blip"]) == 2
    assert "unknown backend 'blip'" in capsys.readouterr().err


def scannet_semantic_data(make_scene, write_scannet, root):
    """Two tiny ScanNet-format scenes whose label maps hold 11, 12 and 13."""
    for index in range(2):
        write_scannet(make_scene(num_views=3, seed=index), root / f"scene{index:04d}_00", stems=["0", "1", "2"])
    return root


def test_eval_on_scannet_names_classes_with_the_label_table_at_the_data_root(
    make_scene, write_scannet, tiny_model_file, tmp_path
):
    """The table maps the three label IDs to one NYU40 class. Closed-set, a backend then gives every
    instance that class, as the oracle gives it to every instance touching it: equal 2D rows. Had
    the IDs not been mapped, three classes would be scored and the rows would differ."""
    data = scannet_semantic_data(make_scene, write_scannet, tmp_path / "data")
    header = "id\traw_category\tcategory\tcount\tnyu40id\teigen13id\tnyuClass\tnyu40class"
    rows = [f"{i}\t{raw}\t{raw}\t1\t5\t1\tchair\tchair" for i, raw in ((11, "chair"), (12, "armchair"), (13, "stool"))]
    (data / "scannetv2-labels.combined.tsv").write_text("\n".join([header, *rows]) + "\n")
    out = tmp_path / "report"
    argv = ["eval", "--data", str(data), "--model", str(tiny_model_file), "--out", str(out), "--views", "2"]
    assert main([*argv, "--device", "cpu", "--tasks", "semantic", "--quiet"]) == 0
    with open(out / "per_scene.csv") as handle:
        per_scene = list(csv.DictReader(handle))
    assert [(row["scene"], row["method"]) for row in per_scene] == [
        (f"scene{index:04d}_00", method) for index in range(2) for method in ("tiny", "iggt-text", "oracle classes")
    ]
    for backend, oracle in zip(per_scene[1::3], per_scene[2::3], strict=True):
        assert all(0 <= float(backend[key]) <= 1 for key in TASK_COLUMNS["semantic"])
        assert backend["miou_2d"] == oracle["miou_2d"] and backend["macc_2d"] == oracle["macc_2d"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["class_names"] == "scannetv2-labels.combined.tsv" and summary["data_format"] == "scannet"


def test_eval_on_scannet_takes_a_class_name_file(make_scene, write_scannet, tiny_model_file, tmp_path):
    data = scannet_semantic_data(make_scene, write_scannet, tmp_path / "data")
    names = tmp_path / "classes.txt"
    names.write_text("11 chair\n12 table\n13 lamp\n")
    out = tmp_path / "report"
    argv = ["eval", "--data", str(data), "--model", str(tiny_model_file), "--out", str(out), "--views", "2"]
    argv += ["--device", "cpu", "--tasks", "instances,semantic", "--class-names", str(names)]
    assert main([*argv, "--quiet"]) == 0
    with open(out / "per_scene.csv") as handle:
        rows = {(row["scene"], row["method"]): row for row in csv.DictReader(handle)}
    for scene in ("scene0000_00", "scene0001_00"):
        backend, oracle = rows[(scene, "iggt-text")], rows[(scene, "oracle classes")]
        assert all(0 <= float(row[key]) <= 1 for row in (backend, oracle) for key in TASK_COLUMNS["semantic"])
        assert float(oracle["macc_2d"]) >= float(backend["macc_2d"])  # one class per instance at best
    assert json.loads((out / "summary.json").read_text())["class_names"] == "classes.txt"


def test_eval_on_scannet_without_class_names_says_where_to_put_them(make_scene, write_scannet, tmp_path, capsys):
    data = scannet_semantic_data(make_scene, write_scannet, tmp_path / "data")
    argv = ["eval", "--data", str(data), "--out", str(tmp_path / "r"), "--model", "missing.pt", "--tasks", "semantic"]
    assert main(argv) == 2  # before the (missing) model is loaded
    error = capsys.readouterr().err
    assert "ScanNet-format data has none: put scannetv2-labels.combined.tsv in" in error
    assert "or pass --scannet-labels TSV or --class-names FILE" in error and error.count("\n") == 1
    (data / "scannetv2-labels.combined.tsv").write_text("id\tname\n11\tchair\n")
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "is not ScanNet's label table: its header has no column nyu40id, nyu40class" in error
    assert error.count("\n") == 1


def test_eval_refuses_class_names_for_the_scene_format(make_scene, tmp_path, capsys):
    from iggt.io.scene_format import write_scene

    write_scene(make_scene(num_views=2), tmp_path / "data" / "room")
    (tmp_path / "classes.txt").write_text("11 box\n")
    argv = ["eval", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "r"), "--model", "missing.pt"]
    assert main([*argv, "--tasks", "semantic", "--class-names", str(tmp_path / "classes.txt")]) == 2
    assert "--class-names names the classes of ScanNet-format data; scene-format scenes carry their own" in (
        capsys.readouterr().err
    )
