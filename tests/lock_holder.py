"""Another process that holds an output folder's lock, for the tests of two runs on one folder."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"
ENVIRONMENT = {**os.environ, "PYTHONPATH": str(SOURCE)}
"""The environment of a child process that imports this checkout's iggt."""

HOLD_SCRIPT = """
import sys
from iggt.io.output_dir import claim_output_dir
with claim_output_dir(sys.argv[1], replaces_folder=sys.argv[2] == "replaces"):
    print("holding", flush=True)
    sys.stdin.readline()
"""
"""Claims the folder argv[1], says "holding", and keeps the lock until a line arrives on stdin."""


@contextmanager
def held_by_another_process(out: Path, replaces_folder: bool = True) -> Iterator[int]:
    """Yield the pid of a live process holding ``out``'s lock; when the block ends it lets go, and
    must have exited cleanly."""
    mode = "replaces" if replaces_folder else "writes-into"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SCRIPT, str(out), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=ENVIRONMENT,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        yield holder.pid
    finally:
        holder.communicate("done\n", timeout=60)
    assert holder.returncode == 0, "the process holding the lock failed"
