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
    argv = ["eval", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "r"), "--model", "missing.pt"]
    assert main([*argv, "--tasks", "semantic", "--vl-backend", "blip"]) == 2
    assert "unknown backend 'blip'" in capsys.readouterr().err
