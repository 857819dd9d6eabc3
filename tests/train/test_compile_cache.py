"""The compile cache file lets a fresh process (a fresh machine) skip inductor's compilation."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from iggt.train.compile_cache import load_compile_cache

SRC = Path(__file__).resolve().parents[2] / "src"

# Inductor compiles CPU kernels with the system's C++ compiler; without one nothing can be cached.
needs_compiler = pytest.mark.skipif(
    shutil.which(os.environ.get("CXX", "g++")) is None and shutil.which("c++") is None,
    reason="torch.compile on the CPU needs a C++ compiler",
)

PROGRAM = textwrap.dedent(
    """
    import json, sys
    import torch
    from torch._dynamo.utils import counters
    from iggt.train.compile_cache import load_compile_cache, save_compile_cache

    mode, path = sys.argv[1], sys.argv[2]
    loaded = load_compile_cache(path) if mode == "load" else 0

    @torch.compile
    def f(x):
        return (x.sin() * 2 + x.cos()).sum(-1)

    value = f(torch.linspace(0, 1, 64).reshape(8, 8)).tolist()
    saved = save_compile_cache(path) if mode == "save" else 0
    print(json.dumps({"loaded": loaded, "saved": saved, "value": value,
                      "hits": counters["inductor"]["fxgraph_cache_hit"],
                      "misses": counters["inductor"]["fxgraph_cache_miss"]}))
    """
)


def run_fresh(tmp_path: Path, mode: str, cache_file: Path, name: str) -> dict:
    """Run PROGRAM in a new process with its own, empty inductor cache (as on a fresh machine)."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / f"inductor_{name}")}
    env.pop("TORCHINDUCTOR_FORCE_DISABLE_CACHES", None)
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode, str(cache_file)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@needs_compiler
def test_a_fresh_process_hits_the_cache_the_file_carries(tmp_path):
    cache_file = tmp_path / "carried" / "compile_cache.bin"
    first = run_fresh(tmp_path, "save", cache_file, "first")  # a fresh start without the file compiles
    assert first["misses"] >= 1 and first["saved"] >= 1 and cache_file.is_file()
    second = run_fresh(tmp_path, "load", cache_file, "second")
    assert second["loaded"] == first["saved"]
    # its own inductor cache was empty: every graph came from the file, none was compiled again
    assert second["hits"] >= 1 and second["misses"] == 0
    assert second["value"] == pytest.approx(first["value"])


def test_a_missing_or_unreadable_file_leaves_the_run_to_compile(tmp_path, caplog):
    assert load_compile_cache(tmp_path / "absent.bin") == 0
    broken = tmp_path / "broken.bin"
    broken.write_bytes(b"not torch's format")
    with caplog.at_level("WARNING"):
        assert load_compile_cache(broken) == 0
    assert f"compile cache {broken} could not be loaded" in caplog.text
