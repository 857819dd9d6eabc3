"""`iggt curate masks` end to end on an engine scene: the written scene has consistent IDs, the
report is beside it, bad input is one line, and an interrupted run leaves nothing presented as done."""

import json

import numpy as np
import pytest
from PIL import Image

from iggt.cli.main import main
from iggt.curate.agreement import instance_agreement
from iggt.curate.degrade import Degradation, degrade_masks
from iggt.io import output_dir
from iggt.io.scene_format import read_scene, write_scene


@pytest.fixture
def capture_and_masks(engine_scenes, tmp_path):
    scene = engine_scenes[2]
    write_scene(scene, tmp_path / "room")
    masks = tmp_path / "masks"
    masks.mkdir()
    rng = np.random.default_rng(0)
    for name, ids in zip(scene.frame_names, scene.instance_ids, strict=True):
        labels = degrade_masks(ids, Degradation(split=0.1, merge=0.1, drop=0.1), rng).labels
        Image.fromarray(labels.astype(np.uint16)).save(masks / f"{name}.png")
    return scene, tmp_path / "room", masks


def test_curate_masks_writes_a_scene_and_its_report(capture_and_masks, tmp_path, capsys):
    scene, capture, masks = capture_and_masks
    out = tmp_path / "curated"
    assert (
        main(["curate", "masks", "--capture", str(capture), "--masks", str(masks), "--out", str(out), "--quiet"]) == 0
    )
    curated = read_scene(out / "room")
    assert curated.frame_names == scene.frame_names
    assert instance_agreement(curated.instance_ids, scene.instance_ids)["ari"] >= 0.9
    report = json.loads((out / "curation_report.json").read_text())
    assert len(report["instances"]) == len(curated.instances)
    assert "instances over 8 frames" in capsys.readouterr().out


def test_a_missing_masks_file_is_one_line(capture_and_masks, tmp_path, capsys):
    _, capture, masks = capture_and_masks
    (masks / "000004.png").unlink()
    code = main(["curate", "masks", "--capture", str(capture), "--masks", str(masks), "--out", str(tmp_path / "o")])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert (
        error == "iggt curate: error: frame 000004: no masks file masks/000004.png or 000004.json; give every frame one"
    )
    assert not (tmp_path / "o").exists()


def test_an_interrupted_run_leaves_no_scene(capture_and_masks, tmp_path, monkeypatch):
    _, capture, masks = capture_and_masks

    def interrupt(step):
        if step == "staged":
            raise KeyboardInterrupt

    monkeypatch.setattr(output_dir, "_step_hook", interrupt)
    out = tmp_path / "curated"
    args = ["curate", "masks", "--capture", str(capture), "--masks", str(masks), "--out", str(out), "--quiet"]
    assert main(args) == 130
    assert not out.exists()
    assert not list(tmp_path.glob(".curated.partial-*"))


def test_curate_mesh_projects_a_scannet_mesh_into_the_capture(engine_scenes, tmp_path):
    from iggt.curate.engine_mesh import layout_mesh
    from iggt.curate.mesh_labels import write_scannet_mesh
    from iggt.synth.config import SceneConfig
    from iggt.synth.prepare import SceneRequest, prepare_scene

    scene = engine_scenes[0]  # conftest.py renders seed 5 with these cameras
    layout, _ = prepare_scene(
        SceneRequest(5, 8, (60, 80)), SceneConfig(trajectory_weights={"orbit": 1.0, "look_at": 1.0})
    )
    write_scene(scene, tmp_path / "room")
    ply, _, _ = write_scannet_mesh(layout_mesh(layout), tmp_path / "scan", "scene0000_00")
    out = tmp_path / "curated"
    assert (
        main(["curate", "mesh", "--capture", str(tmp_path / "room"), "--mesh", str(ply), "--out", str(out), "--quiet"])
        == 0
    )
    curated = read_scene(out / "room")
    assert (curated.instance_ids == scene.instance_ids).mean() > 0.98
    assert json.loads((out / "curation_report.json").read_text())["path"] == "mesh"


def test_curate_mesh_without_its_label_files_is_one_line(engine_scenes, tmp_path, capsys):
    write_scene(engine_scenes[0], tmp_path / "room")
    (tmp_path / "a_vh_clean_2.ply").write_text("ply")
    argv = [
        "curate",
        "mesh",
        "--capture",
        str(tmp_path / "room"),
        "--mesh",
        str(tmp_path / "a_vh_clean_2.ply"),
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"iggt curate: error: --segments {tmp_path / 'a_vh_clean_2.0.010000.segs.json'} does not exist; "
        "pass --segments explicitly"
    )
