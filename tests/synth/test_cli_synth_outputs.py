"""`iggt synth --out`: checked before rendering, never shared by two runs, a full disk in one line,
and the leftovers of a killed run removed by the next."""

import errno
import os
from pathlib import Path

import pytest

from iggt.cli import synth as synth_cli
from iggt.cli.main import main
from iggt.io import scene_format
from iggt.io.scene_format import list_scenes, read_scene
from lock_holder import held_by_another_process

REPO_SRC = Path(__file__).resolve().parents[2] / "src"
SMALL = ["--scenes", "1", "--views", "2", "--size", "16x16", "--no-shadows"]


def synth(capsys, out, *extra) -> tuple[int, str]:
    code = main(["synth", "--out", str(out), *SMALL, *extra])
    return code, capsys.readouterr().err


def test_an_out_under_a_regular_file_fails_before_rendering(tmp_path, capsys, monkeypatch):
    def render(*args, **kwargs):
        raise AssertionError("rendered before the destination was checked")

    monkeypatch.setattr(synth_cli, "render_scenes", render)
    (tmp_path / "notes.txt").write_text("a file")
    code, err = synth(capsys, tmp_path / "notes.txt" / "data")
    assert code == 2 and err.strip() == (
        f"iggt synth: error: --out {tmp_path / 'notes.txt' / 'data'} is under {tmp_path / 'notes.txt'}, "
        "which is a file; pass a folder path"
    )


def test_a_full_disk_is_one_line_and_keeps_the_old_scene(tmp_path, capsys, monkeypatch):
    out = tmp_path / "data"
    assert synth(capsys, out, "--depth-encoding", "npy")[0] == 0
    before = read_scene(out / "scene_000000")

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(scene_format.np, "save", full_disk)
    code, err = synth(capsys, out, "--depth-encoding", "npy", "--seed", "5", "--overwrite")
    errors = [line for line in err.splitlines() if line.startswith("iggt synth: error: ")]  # others: progress bar
    assert code == 2 and len(errors) == 1 and "Traceback" not in err
    assert errors[0].startswith(f"iggt synth: error: cannot write {out}: No space left on device; free some space")
    assert (read_scene(out / "scene_000000").images == before.images).all()
    assert sorted(os.listdir(out)) == ["dataset.json", "scene_000000"]


def test_leftovers_of_a_killed_run_are_restored_or_removed(tmp_path, capsys):
    out = tmp_path / "data"
    assert synth(capsys, out)[0] == 0
    # A run killed while replacing scene_000000: its old folder renamed aside, its new one half written.
    os.rename(out / "scene_000000", out / ".scene_000000.previous-dead5678")
    (out / ".scene_000000.partial-dead1234" / "images").mkdir(parents=True)
    code, err = synth(capsys, out)
    assert code == 2 and "scene_000000 already exists; pass --overwrite" in err  # the old scene is back
    assert sorted(os.listdir(out)) == ["dataset.json", "scene_000000"]
    assert [folder.name for folder in list_scenes(out)] == ["scene_000000"]
    read_scene(out / "scene_000000")


def test_a_second_synth_into_a_busy_out_is_refused(tmp_path, capsys):
    out = tmp_path / "data"
    with held_by_another_process(out, replaces_folder=False) as pid:
        code, err = synth(capsys, out)
        assert code == 2 and f"another iggt run (pid {pid}) is writing --out {out}" in err
    assert not out.exists() or os.listdir(out) == []


@pytest.mark.parametrize("flag", ["--overwrite", None])
def test_synth_into_a_folder_with_other_files_keeps_them(tmp_path, capsys, flag):
    out = tmp_path / "data"
    out.mkdir()
    (out / "README.txt").write_text("mine")
    assert synth(capsys, out, *([flag] if flag else []))[0] == 0
    assert (out / "README.txt").read_text() == "mine"
