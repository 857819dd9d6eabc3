"""export_all writes every format or nothing."""

import json
import os
import threading

import pytest

from iggt.errors import InputError
from iggt.export import DEFAULT_FORMATS, EXPORTERS, export_all
from iggt.io import output_dir
from iggt.structures.strict_json import write_strict_json


def broken_exporter(predictions, instances, out_dir, options):
    (out_dir / "half_written.bin").write_bytes(b"x")
    raise RuntimeError("disk full")


def test_writes_every_format_into_the_directory(scene, tmp_path):
    predictions, instances = scene
    out_dir = tmp_path / "result"
    written = export_all(predictions, instances, out_dir)
    assert list(written) == list(DEFAULT_FORMATS)
    files = [path for paths in written.values() for path in paths]
    assert all(path.is_file() and out_dir in path.parents for path in files)
    on_disk = {path for path in out_dir.rglob("*") if path.is_file()}
    assert on_disk == set(files)
    assert os.listdir(tmp_path) == ["result"]  # no temporary sibling left behind


def test_failing_exporter_leaves_no_directory_and_no_temporary(scene, tmp_path, monkeypatch):
    predictions, instances = scene
    monkeypatch.setitem(EXPORTERS, "glb", broken_exporter)
    with pytest.raises(RuntimeError, match="disk full"):
        export_all(predictions, instances, tmp_path / "result")
    assert os.listdir(tmp_path) == []


def test_extra_writers_write_inside_the_atomic_export(scene, tmp_path, monkeypatch):
    predictions, instances = scene

    def write_run_json(directory):
        return [write_strict_json(directory / "run.json", {"f": float("inf")})]

    out_dir = tmp_path / "result"
    written = export_all(predictions, instances, out_dir, formats=("json",), extra_writers={"run": write_run_json})
    assert written["run"] == [out_dir / "run.json"]
    assert json.loads((out_dir / "run.json").read_text()) == {"f": None}  # strict JSON: inf becomes null
    monkeypatch.setitem(EXPORTERS, "json", broken_exporter)
    with pytest.raises(RuntimeError, match="disk full"):
        export_all(
            predictions, instances, tmp_path / "second", formats=("json",), extra_writers={"run": write_run_json}
        )
    assert not (tmp_path / "second").exists()


def test_non_empty_directory_needs_overwrite(scene, tmp_path):
    predictions, instances = scene
    out_dir = tmp_path / "result"
    out_dir.mkdir()
    (out_dir / "old.txt").write_text("old")
    with pytest.raises(InputError, match="is not empty; pass overwrite=True"):
        export_all(predictions, instances, out_dir, formats=("json",))
    assert os.listdir(out_dir) == ["old.txt"]
    export_all(predictions, instances, out_dir, formats=("json",), overwrite=True)
    assert os.listdir(out_dir) == ["instances.json"]
    assert os.listdir(tmp_path) == ["result"]


def test_empty_existing_directory_is_filled(scene, tmp_path):
    predictions, instances = scene
    (tmp_path / "result").mkdir()
    export_all(predictions, instances, tmp_path / "result", formats=("json",))
    assert os.listdir(tmp_path / "result") == ["instances.json"]


def test_failed_overwrite_keeps_the_previous_export(scene, tmp_path, monkeypatch):
    predictions, instances = scene
    out_dir = tmp_path / "result"
    export_all(predictions, instances, out_dir, formats=("json",))
    before = (out_dir / "instances.json").read_text()
    monkeypatch.setitem(EXPORTERS, "ply", broken_exporter)
    with pytest.raises(RuntimeError):
        export_all(predictions, instances, out_dir, formats=("json", "ply"), overwrite=True)
    assert os.listdir(tmp_path) == ["result"] and os.listdir(out_dir) == ["instances.json"]
    assert (out_dir / "instances.json").read_text() == before


def test_failed_final_rename_restores_the_previous_export(scene, tmp_path, monkeypatch):
    predictions, instances = scene
    out_dir = tmp_path / "result"
    export_all(predictions, instances, out_dir, formats=("json",))

    def refuse(first, second):
        raise OSError("rename refused")

    # Where no atomic swap exists the old folder is renamed aside: the failed second rename must restore it.
    monkeypatch.setattr(output_dir, "exchange", lambda first, second: False)
    monkeypatch.setattr(output_dir, "rename_no_replace", refuse)
    with pytest.raises(OSError, match="rename refused"):
        export_all(predictions, instances, out_dir, formats=("json",), overwrite=True)
    assert os.listdir(tmp_path) == ["result"] and os.listdir(out_dir) == ["instances.json"]


def test_unknown_format_and_file_destination_raise(scene, tmp_path):
    predictions, instances = scene
    with pytest.raises(InputError, match="unknown export formats obj; choose from npz ply glb masks colmap json"):
        export_all(predictions, instances, tmp_path / "result", formats=("obj",))
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="is a file"):
        export_all(predictions, instances, tmp_path / "file", formats=("json",))


def test_a_failure_beside_a_writer_still_running_removes_everything_after_it_ends(scene, tmp_path, monkeypatch):
    """Writers run in threads: the staging folder goes only once the slower writer is done with it."""
    predictions, instances = scene
    started, failing, finished = threading.Event(), threading.Event(), threading.Event()

    def slow_exporter(predictions, instances, out_dir, options):
        started.set()
        assert failing.wait(10)  # still writing when the other writer fails
        path = out_dir / "slow.bin"
        path.write_bytes(b"late")
        finished.set()
        return [path]

    def broken_once_slow_started(predictions, instances, out_dir, options):
        assert started.wait(10)
        failing.set()
        broken_exporter(predictions, instances, out_dir, options)

    monkeypatch.setitem(EXPORTERS, "npz", slow_exporter)
    monkeypatch.setitem(EXPORTERS, "ply", broken_once_slow_started)
    with pytest.raises(RuntimeError, match="disk full"):
        export_all(predictions, instances, tmp_path / "result", formats=("npz", "ply", "json"))
    assert finished.is_set()
    assert os.listdir(tmp_path) == []


def test_threaded_writers_return_their_files_in_format_order(scene, tmp_path):
    predictions, instances = scene
    written = export_all(predictions, instances, tmp_path / "result", formats=("json", "masks", "npz"))
    assert list(written) == ["json", "masks", "npz"]
    assert [path.name for path in written["npz"]] == ["predictions.npz", "instances.npz"]
