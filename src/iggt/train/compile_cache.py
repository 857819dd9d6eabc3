"""torch.compile's artifacts in one file, so that a fresh machine skips most of the compilation.

A GPU machine lent for minutes spends two to four of them compiling the renderer and the model
(docs/training.md). torch keeps what it compiled (inductor's kernels, AOT autograd's graphs,
autotuning results) in a cache on local disk, which a fresh machine does not have;
``torch.compiler.save_cache_artifacts`` writes every artifact this process compiled or found in
that cache as bytes, and ``load_cache_artifacts`` puts them into a new machine's cache. Dynamo
still traces the Python code again; only the code generation and kernel compilation are skipped.

torch uses an artifact only when its key (the graph, torch's version, the device and the
configuration) matches, so a stale or foreign file costs nothing but the load: the run compiles
what the file does not hold. A file that cannot be read at all is reported and ignored.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

logger = logging.getLogger(__name__)


def load_compile_cache(path: str | Path) -> int:
    """Put the artifacts of the file at ``path`` into this machine's compile caches.

    Returns how many artifacts it held (0 when the file does not exist or cannot be read; the
    run then compiles from scratch, which is never wrong, only slower).
    """
    path = Path(path)
    if not path.is_file():
        logger.info("compile cache %s does not exist yet; compiling from scratch", path)
        return 0
    try:
        info = torch.compiler.load_cache_artifacts(path.read_bytes())
    except Exception as error:  # torch's own failures here are several types; none may stop a run
        info, reason = None, str(error)
    else:
        reason = "not torch's cache format, or corrupted"  # torch returns None for those
    if info is None:
        logger.warning("compile cache %s could not be loaded (%s); compiling from scratch", path, reason)
        return 0
    count = _artifact_count(info)
    logger.info("compile cache %s: %d artifacts loaded", path, count)
    return count


def save_compile_cache(path: str | Path) -> int:
    """Write every artifact this process compiled or loaded to ``path`` (replaced atomically).

    Returns how many artifacts were written; with none (nothing compiled yet) the file is left as it is.
    """
    path = Path(path)
    saved = torch.compiler.save_cache_artifacts()
    if saved is None:
        return 0
    data, info = saved
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    partial.write_bytes(data)
    os.replace(partial, path)  # a reader sees the old file or the new one, never half of one
    return _artifact_count(info)


def _artifact_count(info) -> int:
    """Artifacts in a ``torch.compiler.CacheInfo`` (or 0 for None)."""
    return 0 if info is None else sum(len(keys) for keys in info.artifacts.values())
