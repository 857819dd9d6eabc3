"""`iggt reconstruct --out`: never deletes inputs or unrelated folders, never mixes two runs,
fails before any work on a destination it cannot write, and reports a full disk in one line."""

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from iggt.cli.main import main
from iggt.export import EXPORTERS
from iggt.model.iggt import IGGT
from lock_holder import held_by_another_process

REPO_SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def photos(photos, tmp_path):
    """The shared tmp/photos (two images) plus a note in it; tmp also holds an unrelated file."""
    (photos / "notes.txt").write_text("my notes")
    (tmp_path / "unrelated.txt").write_text("keep me")
    return photos


@pytest.fixture
def no_compute(monkeypatch):
    """Make the network fail loudly: a destination check must come before any compute."""

    def forward(self, *args, **kwargs):
        raise AssertionError("the network ran before the destination was checked")

    monkeypatch.setattr(IGGT, "forward", forward)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def reconstruct(capsys, *arguments) -> tuple[int, str]:
    code = main(["reconstruct", *map(str, arguments), "--device", "cpu", "--quiet"])
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, message: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("iggt reconstruct: error: ") and message in lines[0], err


@pytest.mark.parametrize("target", ["inputs", "parent", "symlink", "image-files"])
def test_overwrite_never_deletes_the_inputs(capsys, tmp_path, photos, tiny_weights, no_compute, target):
    before = snapshot(tmp_path)
    inputs = [photos / "0.png", photos / "1.png"] if target == "image-files" else [photos]
    out = {"inputs": photos, "parent": tmp_path, "image-files": photos, "symlink": tmp_path / "link"}[target]
    if target == "symlink":
        (tmp_path / "link").symlink_to(photos, target_is_directory=True)
    code, err = reconstruct(capsys, *inputs, "--out", out, "--overwrite", "--model", tiny_weights)
    assert_one_line_error(code, err, "holds the input")
    assert "which the overwrite would delete; choose another folder" in err
    (tmp_path / "link").unlink(missing_ok=True)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("protected", ["working folder", "home folder"])
def test_the_working_and_home_folders_are_refused(capsys, tmp_path, photos, tiny_weights, monkeypatch, protected):
    folder = tmp_path / "somewhere"
    folder.mkdir()
    (folder / "precious.txt").write_text("x")
    if protected == "working folder":
        monkeypatch.chdir(folder)
        out = Path(".")
    else:
        monkeypatch.setenv("HOME", str(folder))
        out = folder
    code, err = reconstruct(capsys, photos, "--out", out, "--overwrite", "--model", tiny_weights)
    assert_one_line_error(code, err, f"is or holds the {protected}")
    assert (folder / "precious.txt").read_text() == "x"


def test_a_folder_holding_the_working_folder_is_refused(capsys, tmp_path, photos, tiny_weights, monkeypatch):
    monkeypatch.chdir(photos)
    code, err = reconstruct(capsys, photos, "--out", "..", "--overwrite", "--model", tiny_weights)
    assert_one_line_error(code, err, "is or holds the working folder")
    assert (tmp_path / "unrelated.txt").is_file()


def test_an_out_under_a_regular_file_fails_before_any_work(capsys, tmp_path, photos, tiny_weights, no_compute):
    (tmp_path / "report.txt").write_text("a file")
    code, err = reconstruct(capsys, photos, "--out", tmp_path / "report.txt" / "out", "--model", tiny_weights)
    assert_one_line_error(code, err, f"is under {tmp_path / 'report.txt'}, which is a file")


def test_a_full_disk_keeps_the_old_result_and_says_so_in_one_line(capsys, tmp_path, photos, tiny_weights, monkeypatch):
    out = tmp_path / "out"
    assert reconstruct(capsys, photos, "--out", out, "--formats", "npz", "json", "--model", tiny_weights)[0] == 0
    before, siblings = snapshot(out), sorted(os.listdir(tmp_path))

    def full_disk(predictions, instances, directory, options):
        (directory / "instances.json").write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(directory / "instances.json"))

    monkeypatch.setitem(EXPORTERS, "json", full_disk)
    arguments = [photos, "--out", out, "--overwrite", "--formats", "npz", "json", "--model", tiny_weights]
    code, err = reconstruct(capsys, *arguments)
    assert_one_line_error(code, err, "instances.json: No space left on device; free some space or choose another")
    assert "Traceback" not in err
    assert snapshot(out) == before and sorted(os.listdir(tmp_path)) == siblings


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a tmpfs with the given options (needs mount rights: root in a container that allows it)."""
    mounted = []

    def mount(name: str, options: str) -> Path:
        point = tmp_path / name
        point.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({result.stderr.decode().strip() or 'mount failed'})")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], check=False)


def test_a_read_only_destination_fails_before_any_work(capsys, photos, tiny_weights, no_compute, tmpfs):
    read_only = tmpfs("read-only", "ro,size=1m")
    code, err = reconstruct(capsys, photos, "--out", read_only / "out", "--model", tiny_weights)
    assert_one_line_error(code, err, "Read-only file system")


def test_a_really_full_disk_leaves_nothing_behind(capsys, photos, tiny_weights, tmpfs):
    small = tmpfs("small", "size=64k")
    code, err = reconstruct(capsys, photos, "--out", small / "out", "--model", tiny_weights)
    assert_one_line_error(code, err, "No space left on device")
    assert os.listdir(small) == []


def test_a_second_run_on_an_out_another_run_writes_is_refused(capsys, tmp_path, photos, tiny_weights, no_compute):
    out = tmp_path / "out"
    with held_by_another_process(out) as pid:
        code, err = reconstruct(capsys, photos, "--out", out, "--model", tiny_weights)
        assert_one_line_error(code, err, f"another iggt run (pid {pid}) is writing --out {out}")
    assert not out.exists()


def test_sigterm_mid_export_exits_cleanly_in_one_line(tmp_path):
    """What `timeout`, containers and schedulers do: SIGTERM, here while the export is being written."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "iggt.cli.main", "reconstruct", "--example", "--out", str(out)]
    command += ["--device", "cpu", "--quiet"]
    environment = {**os.environ, "PYTHONPATH": str(REPO_SRC), "PYTHONWARNINGS": "ignore"}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=environment)
    try:
        while not list(tmp_path.glob(".out.partial-*")) and process.poll() is None:
            time.sleep(0.005)
        process.terminate()
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 143, err
    assert err.strip() == "iggt reconstruct: terminated (SIGTERM); temporary files removed"
    assert os.listdir(tmp_path) == []
