"""iggt.io.output_dir: the lock between real processes, a kill at every step of the final move,
and the one-line errors for destinations that cannot be written."""

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from iggt.errors import InputError, OutputError
from iggt.io.output_dir import check_output_dir, claim_output_dir, publish, staging_dir, writing_into
from lock_holder import ENVIRONMENT, HOLD_SCRIPT, held_by_another_process


def write_result(folder: Path, version: str) -> None:
    """A result of several files and a subfolder, each naming its version."""
    (folder / "deep").mkdir(parents=True, exist_ok=True)
    for name in ("a.txt", "b.txt", "deep/c.txt"):
        (folder / name).write_text(f"{version} {name}")


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
from iggt.io import output_dir

out, step, swap = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "swap"
if not swap:
    output_dir.exchange = lambda first, second: False  # a file system without an atomic swap
output_dir._step_hook = lambda reached: os.kill(os.getpid(), signal.SIGKILL) if reached == step else None
with output_dir.claim_output_dir(out, overwrite=True) as path:
    with output_dir.staging_dir(path) as staging:
        (staging / "deep").mkdir()
        for name in ("a.txt", "b.txt", "deep/c.txt"):
            (staging / name).write_text(f"new {name}")
        output_dir.publish(staging, path, overwrite=True)
print("finished")
"""
# What --out holds right after a SIGKILL at each step (None: missing until the next run restores it).
STEPS = {
    "swap": {"staged": "old", "swapped": "new", "removed-old": "new"},
    "rename": {"staged": "old", "moved-aside": None, "moved-in": "new", "removed-old": "new"},
}


@pytest.mark.parametrize(
    ("mode", "step"),
    [pytest.param(mode, step, id=f"{mode}-{step}") for mode, steps in STEPS.items() for step in steps],
)
def test_a_kill_at_any_step_of_the_final_move_leaves_a_complete_result(tmp_path, mode, step):
    out = tmp_path / "result"
    write_result(out, "old")
    expected = {"old": snapshot(out), "new": {k: v.replace("old", "new") for k, v in snapshot(out).items()}}
    process = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(out), step, mode], env=ENVIRONMENT, capture_output=True, timeout=60
    )
    assert process.returncode == -signal.SIGKILL, process.stderr
    state = STEPS[mode][step]
    if state is None:
        assert not out.exists()
    else:
        assert snapshot(out) == expected[state]
    assert os.listdir(tmp_path) != ["result"]  # the dead run left its lock and staging or old folder
    with claim_output_dir(out, overwrite=True):  # the next run repairs before it looks at --out
        assert snapshot(out) == expected[state or "old"]
        assert os.listdir(tmp_path) == ["result", ".result.lock"]
    assert os.listdir(tmp_path) == ["result"]


def test_a_completed_publish_leaves_only_the_result(tmp_path):
    out = tmp_path / "result"
    write_result(out, "old")
    with claim_output_dir(out, overwrite=True) as path, staging_dir(path) as staging:
        write_result(staging, "new")
        publish(staging, path, overwrite=True)
    assert os.listdir(tmp_path) == ["result"] and snapshot(out)["a.txt"] == "new a.txt"


def test_two_processes_never_write_one_folder_at_once(tmp_path):
    out = tmp_path / "result"
    with held_by_another_process(out) as pid:
        busy = f"another iggt run \\(pid {pid}\\) is writing --out {out}"
        with pytest.raises(OutputError, match=busy), claim_output_dir(out):
            pass
    with claim_output_dir(out) as path:  # free again once the holder has finished
        assert path == out.resolve()


def test_a_dead_holder_does_not_block_the_next_run(tmp_path):
    out = tmp_path / "result"
    script = HOLD_SCRIPT.replace("sys.stdin.readline()", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    subprocess.run(
        [sys.executable, "-c", script, str(out), "replaces"], env=ENVIRONMENT, capture_output=True, timeout=60
    )
    assert (tmp_path / ".result.lock").is_file()
    with claim_output_dir(out):
        pass
    assert os.listdir(tmp_path) == []


def test_a_full_disk_while_writing_is_one_output_error(tmp_path):
    full = "cannot write .*x.bin: No space left on device; free some space or choose"
    with pytest.raises(OutputError, match=full), writing_into(tmp_path, "--out"):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "x.bin"))
    # Other errors are bugs: they stay as they are.
    with pytest.raises(ValueError, match="not a write error"), writing_into(tmp_path, "--out"):
        raise ValueError("not a write error")


def test_refused_locations(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.chdir(tmp_path)
    cases = {
        tmp_path / "file": "is a file",
        tmp_path / "file" / "below": "which is a file",
        tmp_path: "is or holds the working folder",
        Path("/"): "is or holds the",  # root; it also holds the working folder
    }
    for out, message in cases.items():
        with pytest.raises(InputError, match=message):
            check_output_dir(out)
