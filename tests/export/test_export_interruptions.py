"""export_all under concurrency and interruption: a result is never replaced by surprise, and the
next run removes or restores what a dead run left (kills at each step of the final move:
tests/io/test_output_dir.py)."""

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from iggt.errors import OutputError
from iggt.export import export_all
from iggt.export.bundle import EXPORTERS

TESTS_EXPORT = Path(__file__).resolve().parent
REPO_SRC = TESTS_EXPORT.parents[1] / "src"
ENVIRONMENT = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_SRC), str(TESTS_EXPORT)])}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_concurrent_export_to_the_same_folder_is_refused(scene, tmp_path):
    """Run B starts while run A is writing: B must fail, not succeed and then be replaced by A."""
    predictions, instances = scene
    out_dir, outcome = tmp_path / "result", {}

    def second_run():
        try:
            export_all(predictions, instances, out_dir, formats=("json",))
            outcome["second"] = "succeeded"
        except OutputError as exc:
            outcome["second"] = str(exc)

    def start_second_run_midway(directory):
        thread = threading.Thread(target=second_run)
        thread.start()
        thread.join()
        return []

    export_all(predictions, instances, out_dir, formats=("json",), extra_writers={"race": start_second_run_midway})
    assert outcome["second"].startswith(f"another iggt run (pid {os.getpid()}) is writing export directory {out_dir}")
    assert os.listdir(out_dir) == ["instances.json"]


def test_a_folder_filled_while_exporting_is_not_replaced(scene, tmp_path):
    predictions, instances = scene
    out_dir = tmp_path / "result"

    def someone_else_writes(directory):
        out_dir.mkdir()
        (out_dir / "theirs.txt").write_text("theirs")
        return []

    with pytest.raises(OutputError, match="was filled by something else while this run worked; nothing was replaced"):
        export_all(predictions, instances, out_dir, formats=("json",), extra_writers={"other": someone_else_writes})
    assert os.listdir(out_dir) == ["theirs.txt"] and sorted(os.listdir(tmp_path)) == ["result"]


def test_the_next_run_reports_what_it_cleaned_up(scene, tmp_path, caplog):
    predictions, instances = scene
    old = tmp_path / ".result.previous-0123456789ab"
    old.mkdir()
    (old / "instances.json").write_text("{}")
    (tmp_path / ".result.partial-dead").mkdir()
    (tmp_path / ".result.partial-dead" / "big.npz").write_bytes(b"0" * 1000)
    with caplog.at_level(logging.WARNING), pytest.raises(Exception, match="is not empty"):
        export_all(predictions, instances, tmp_path / "result", formats=("json",))
    assert (tmp_path / "result" / "instances.json").read_text() == "{}"
    assert sorted(os.listdir(tmp_path)) == ["result"]
    assert f"restored {tmp_path / 'result'} from an overwrite that was interrupted" in caplog.text
    assert "removed .result.partial-dead, left by an interrupted run" in caplog.text


SIGTERM_SCRIPT = """
import os, signal, sys, time
from export_scene import make_scene
from iggt.export import export_colmap

export_colmap(*make_scene(), sys.argv[1])
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(30)
"""


def test_sigterm_after_a_colmap_export_has_no_native_stack_dump(tmp_path):
    """pycolmap's logging library replaces the SIGTERM handler at import; the export puts it back."""
    process = subprocess.run(
        [sys.executable, "-c", SIGTERM_SCRIPT, str(tmp_path)], env=ENVIRONMENT, capture_output=True, text=True
    )
    assert (tmp_path / "colmap" / "sparse" / "0" / "cameras.bin").is_file()
    assert process.returncode == -signal.SIGTERM and process.stderr == ""


class Interrupted(BaseException):
    """What iggt.cli.main raises on SIGTERM."""


def test_a_signal_while_the_writers_start_waits_for_every_writer_before_cleaning_up(scene, tmp_path, monkeypatch):
    """SIGTERM while export_all starts its writer threads. CPython's Thread.start waits for the new
    thread; a handler that raises there leaves the started thread, already running a writer, out of
    the pool's list, so the pool's shutdown did not wait for it, and the writer recreated the
    staging folder after it was removed (seen with `iggt reconstruct` under `timeout`). Here the
    signal reaches the main thread inside the start of the third writer thread, which runs the
    slowest writer while the other two are busy: no folder may be left once every writer has ended."""
    predictions, instances = scene
    out_dir = tmp_path / "result"
    real_start, started = threading.Thread.start, []

    def start_then_signal(thread):
        real_start(thread)
        if thread.name.startswith("export"):
            started.append(thread)
            if len(started) == 3:  # the handler runs here, inside Thread.start, as a real signal's does
                signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)
                threading.Event().wait(0.05)

    def writer(seconds):
        def write(directory):
            threading.Event().wait(seconds)
            directory.mkdir(parents=True, exist_ok=True)  # as the real writers do
            path = directory / f"after-{seconds}s.txt"
            path.write_text("late")
            return [path]

        return write

    def interrupt(_signum, _frame):
        raise Interrupted

    def slow_json(predictions, instances, directory, options):
        return writer(0.3)(directory)  # busy, so that no idle pool thread takes the slow writer

    monkeypatch.setitem(EXPORTERS, "json", slow_json)
    monkeypatch.setattr(threading.Thread, "start", start_then_signal)
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        with pytest.raises(Interrupted):  # json is the first writer, then these two
            export_all(
                predictions, instances, out_dir, formats=("json",), extra_writers={"a": writer(0.3), "b": writer(0.8)}
            )
    finally:
        signal.signal(signal.SIGTERM, previous)
    for thread in started:
        thread.join(timeout=5)
    assert os.listdir(tmp_path) == []
