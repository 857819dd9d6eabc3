"""Output folders: which ones a run may write, who owns one while a run works, and the final move.

Every subcommand that writes a folder decides here (docs/reliability.md states the guarantees):

- :func:`check_output_dir` refuses, before any work, a destination that is a file or lies under
  one and, for a folder the run replaces as a whole, the working, home or root folder (or a
  folder holding one of them), a non-empty folder without overwrite, and, when an overwrite
  would delete it, a folder holding an input.
- :func:`claim_output_dir` checks, probes that the parent can be written, and holds an exclusive
  lock (``.<name>.lock`` beside the folder, with the owner's pid) for the whole run, so two runs
  never write the same folder; the kernel drops the lock of a dead run, so whatever such a run
  left beside the folder is restored or removed by the next one.
- :func:`publish` moves a finished staging folder into place: it never replaces a folder it was
  not told to replace, and a kill at any step leaves the complete old or the complete new result
  (plus leftovers the next claim restores or removes).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import signal
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from iggt.errors import InputError, OutputError
from iggt.io.rename import exchange, rename_no_replace

logger = logging.getLogger(__name__)
_HELD: set[tuple[Path, int]] = set()  # (folder, thread id) claimed: a nested claim by the same thread is the same run
_step_hook: Callable[[str], None] | None = None
"""Called with each step name of :func:`publish`; fault-injection tests make the process die there."""
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG}


def check_output_dir(
    out: str | Path,
    *,
    inputs: Sequence[str | Path] = (),
    overwrite: bool = False,
    label: str = "--out",
    overwrite_hint: str = "pass --overwrite or choose another folder",
    replaces_folder: bool = True,
) -> Path:
    """The resolved real path of ``out`` if a run may write it; raises InputError naming why not.

    ``replaces_folder``: the run puts a new folder in place of ``out`` (what is there is deleted
    on overwrite), so the rules on contents, inputs and the working, home and root folders apply;
    False: the run only writes its own files into ``out``, which must just be a writable folder.
    ``overwrite_hint`` ends the message for a non-empty folder.
    """
    path = _check_location(out, label, replaces_folder)
    if replaces_folder:
        _check_contents(path, out, inputs, overwrite, label, overwrite_hint)
    return path


def _check_location(out: str | Path, label: str, replaces_folder: bool) -> Path:
    """Refuse a file, a path under a file and, for a replaced folder, the working, home and root
    folders (or a folder holding one of them)."""
    path = Path(out).expanduser().resolve()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        where = "is a file" if existing == path else f"is under {existing}, which is a file"
        raise InputError(f"{label} {out} {where}; pass a folder path")
    for name, protected in _protected_folders() if replaces_folder else ():
        if protected == path or path in protected.parents:
            raise InputError(f"{label} {out} is or holds the {name} {protected}; choose a folder of its own")
    return path


def _check_contents(path: Path, out, inputs, overwrite: bool, label: str, overwrite_hint: str) -> None:
    """Refuse a non-empty folder unless ``overwrite``, and an overwrite that would delete an input."""
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise InputError(f"{label} {out} is not empty; {overwrite_hint}", {"overwrite=True": "overwrite"})
    for item in inputs:
        source = Path(item).expanduser().resolve()
        if overwrite and (source == path or path in source.parents):
            raise InputError(
                f"{label} {out} holds the input {item}, which the overwrite would delete; choose another folder"
            )


def _protected_folders() -> list[tuple[str, Path]]:
    folders = [("working folder", Path.cwd().resolve()), ("filesystem root", Path("/").resolve())]
    with suppress(RuntimeError):  # no home folder known for this user
        folders.append(("home folder", Path.home().resolve()))
    return folders


@contextmanager
def claim_output_dir(
    out: str | Path,
    *,
    inputs: Sequence[str | Path] = (),
    overwrite: bool = False,
    label: str = "--out",
    overwrite_hint: str = "pass --overwrite or choose another folder",
    replaces_folder: bool = True,
) -> Iterator[Path]:
    """Check ``out`` (as :func:`check_output_dir`) and hold its lock until the block ends; yields
    the resolved path.

    The lock is taken before the contents are checked, and the leftovers of dead runs beside the
    folder are restored or removed (and logged) in between, so the check sees what the run will
    replace. A nested claim by the thread that holds the folder shares the lock; any other claim
    (another process or thread) raises OutputError.
    """
    path = _check_location(out, label, replaces_folder)
    holder = (path, threading.get_ident())
    if holder in _HELD:
        if replaces_folder:
            _check_contents(path, out, inputs, overwrite, label, overwrite_hint)
        yield path
        return
    descriptor = _lock(path, out, label)
    try:
        _HELD.add(holder)
        recover_leftovers(path)
        if replaces_folder:
            _check_contents(path, out, inputs, overwrite, label, overwrite_hint)
        yield path
    finally:
        _HELD.discard(holder)
        _unlock(path, descriptor)


def _lock_path(path: Path) -> Path:
    return path.parent / f".{path.name}.lock"


def _lock(path: Path, out, label: str) -> int:
    """An exclusive flock on the lock file beside ``path``, with this pid written in it.

    Creating the lock file is also the probe that the destination can be written, before any work.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return _flock(path, label)
    except OSError as exc:
        if exc.errno not in _WRITE_ERRNOS:
            raise
        raise OutputError(
            f"cannot write {label} {out}: {exc.strerror} in {path.parent}; choose a folder you can write to"
        ) from None


def _flock(path: Path, label: str) -> int:
    lock_path = _lock_path(path)
    while True:
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(descriptor)
            raise OutputError(
                f"another iggt run (pid {owner}) is writing {label} {path}; wait for it to end or choose another folder"
            ) from None
        try:  # the holder may have removed the file after we opened it: lock the file now at that path
            same = os.stat(lock_path).st_ino == os.fstat(descriptor).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
            return descriptor
        os.close(descriptor)


def _unlock(path: Path, descriptor: int) -> None:
    with suppress(FileNotFoundError):  # removed while still locked, so no one locks a file about to vanish
        os.unlink(_lock_path(path))
    os.close(descriptor)


@contextmanager
def staging_dir(path: Path) -> Iterator[Path]:
    """A new empty hidden sibling of ``path`` (same file system, so the final rename is atomic),
    removed if the block raises or is interrupted; the block publishes it on success."""
    staging = None
    try:
        with interrupts_deferred():  # a signal here must not leave a folder that nobody removes
            staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
            staging.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
        yield staging
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise


def recover_leftovers(path: Path) -> list[str]:
    """Restore or remove what dead runs left beside ``path``; returns what was done (also logged).

    Only call with ``path`` claimed: a live run's staging folder looks the same as a dead one's.
    A ``.previous-*`` folder whose ``path`` is missing is the old result of an overwrite killed
    between its two renames: it is renamed back. Any other ``.previous-*`` or ``.partial-*`` is removed.
    """
    notes = []
    previous = sorted(path.parent.glob(f".{path.name}.previous-*"), key=lambda p: p.stat().st_mtime)
    if previous and not path.exists():
        os.rename(previous.pop(), path)
        notes.append(f"restored {path} from an overwrite that was interrupted")
    for leftover in previous + sorted(path.parent.glob(f".{path.name}.partial-*")):
        shutil.rmtree(leftover, ignore_errors=True)
        notes.append(f"removed {leftover.name}, left by an interrupted run")
    for note in notes:
        logger.warning(note)
    return notes


def publish(staging: Path, path: Path, overwrite: bool) -> None:
    """Rename the finished ``staging`` folder to ``path``.

    Without ``overwrite`` only a missing or empty ``path`` is replaced. With it, an existing
    ``path`` is swapped with ``staging`` in one atomic step and the old result, now at the
    staging name, deleted; where the file system cannot swap, the old folder is renamed aside
    first (a kill between the two renames is repaired by the next claim). SIGINT and SIGTERM
    wait until the move is done, so only SIGKILL or a crash can stop it midway.
    """
    with interrupts_deferred():
        _reached("staged")
        if not (overwrite and path.exists()):
            _remove_if_empty(path)
            _rename_into(staging, path)
            _reached("moved-in")
            return
        if exchange(staging, path):
            _reached("swapped")
            shutil.rmtree(staging)
            _reached("removed-old")
            return
        previous = path.parent / f".{path.name}.previous-{uuid.uuid4().hex[:12]}"
        os.rename(path, previous)
        _reached("moved-aside")
        try:
            _rename_into(staging, path)
        except BaseException:
            os.rename(previous, path)
            raise
        _reached("moved-in")
        shutil.rmtree(previous)
        _reached("removed-old")


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        raise OutputError(
            f"{path} was filled by something else while this run worked; nothing was replaced. Run again "
            "or choose another folder"
        ) from None


def _rename_into(staging: Path, path: Path) -> None:
    try:
        rename_no_replace(staging, path)
    except FileExistsError:
        raise OutputError(
            f"{path} appeared while this run worked; nothing was replaced. Run again or choose another folder"
        ) from None


def _reached(step: str) -> None:
    if _step_hook is not None:
        _step_hook(step)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then deliver the first that came (in the main
    thread; elsewhere signals never arrive, and this does nothing).

    Also what starting worker threads needs: a handler that raises inside ``Thread.start`` (which
    waits for the new thread) leaves that thread running but out of its pool's list, so the pool's
    shutdown would not wait for it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    signals = (signal.SIGINT, signal.SIGTERM)
    handlers = {number: signal.getsignal(number) for number in signals}
    for number in signals:
        signal.signal(number, lambda received, _frame: pending.append(received))
    try:
        yield
    finally:
        for number, handler in handlers.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        if pending:
            signal.raise_signal(pending[0])


@contextmanager
def writing_into(destination: str | Path, label: str = "--out") -> Iterator[None]:
    """Turn a full disk or a permission error while writing into one OutputError line."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _WRITE_ERRNOS:
            raise
        fix = "free some space" if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else "fix its permissions"
        where = exc.filename or destination
        raise OutputError(
            f"cannot write {where}: {exc.strerror or os.strerror(exc.errno)}; {fix} or choose another {label} "
            "(an earlier result there is kept)"
        ) from None
