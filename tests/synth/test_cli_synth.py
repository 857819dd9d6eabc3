"""`iggt synth`: scenes on disk that the reader accepts, benchmark sets, and one-line errors."""

import json

import numpy as np

from iggt.cli.main import main
from iggt.io.scene_format import list_scenes, read_scene
from iggt.synth.benchmarks import get_benchmark
from iggt.synth.seeds import derive_training_seed


def test_writes_readable_scenes_an_index_and_a_summary(tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["synth", "--out", str(out), "--scenes", "2", "--views", "3", "--size", "24x32", "--seed", "9"]) == 0
    summary = capsys.readouterr().out
    assert "Wrote 2 scenes x 3 views at 24x32 (base seed 9)" in summary and "views/s" in summary
    folders = list_scenes(out)
    assert [f.name for f in folders] == ["scene_000000", "scene_000001"]
    index = json.loads((out / "dataset.json").read_text())
    assert [s["seed"] for s in index["scenes"]] == [derive_training_seed(9, i) for i in range(2)]
    for folder, entry in zip(folders, index["scenes"], strict=True):
        scene = read_scene(folder)
        assert scene.images.shape == (3, 24, 32, 3)
        assert scene.metadata["seed"] == entry["seed"]
        assert set(np.unique(scene.instance_ids).tolist()) - {0} <= set(scene.instances)


def test_benchmark_sets_use_their_reserved_seeds(tmp_path, capsys):
    out = tmp_path / "mini"
    assert main(["synth", "--out", str(out), "--benchmark", "synthetic-mini", "--no-shadows"]) == 0
    benchmark = get_benchmark("synthetic-mini")
    folders = list_scenes(out)
    assert len(folders) == benchmark.num_scenes
    seeds = [read_scene(f).metadata["seed"] for f in folders]
    assert seeds == benchmark.seeds()
    assert read_scene(folders[0]).images.shape == (benchmark.num_views, *benchmark.image_size, 3)
    assert "benchmark synthetic-mini" in capsys.readouterr().out


def test_errors_are_one_line_with_the_fix(tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["synth", "--out", str(out), "--benchmark", "synthetic-mini", "--views", "3"]) == 2
    assert capsys.readouterr().err.strip() == "iggt synth: error: --benchmark fixes --views; drop them"
    assert main(["synth", "--out", str(out), "--scenes", "1", "--views", "2", "--size", "16x16"]) == 0
    capsys.readouterr()
    assert main(["synth", "--out", str(out), "--scenes", "1", "--views", "2", "--size", "16x16"]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert main(["synth", "--out", str(out), "--scenes", "1", "--views", "2", "--size", "16x16", "--overwrite"]) == 0


def test_meshes_flag_adds_triangle_mesh_instances(tmp_path, capsys):
    out = tmp_path / "meshes"
    args = ["synth", "--out", str(out), "--scenes", "2", "--views", "2", "--size", "16x16", "--meshes", "3"]
    assert main(args) == 0
    assert json.loads((out / "dataset.json").read_text())["mesh_objects"] == 3
    for folder in list_scenes(out):
        classes = [info.class_name for info in read_scene(folder).instances.values()]
        assert 1 <= sum(name in ("rock", "crystal") for name in classes) <= 3
    assert main(["synth", "--out", str(out), "--benchmark", "synthetic-mini", "--meshes", "2"]) == 2
    assert capsys.readouterr().err.strip().endswith("--benchmark fixes --meshes; drop them")
