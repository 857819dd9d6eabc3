"""glibc's mmap threshold fixed for a windowed run with a store (iggt.inference.host_allocator)."""

import platform
import subprocess
import sys
import textwrap

import pytest

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Child processes: the settings are process-wide, so they must not reach the test session.
ANONYMOUS = textwrap.dedent(
    """
    from pathlib import Path

    def anonymous():
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    """
)
CHILD = ANONYMOUS + textwrap.dedent(
    """
    import sys
    import numpy as np
    from iggt.inference.host_allocator import fix_mmap_threshold


    if sys.argv[1] == "fixed":
        assert fix_mmap_threshold()
    before = anonymous()
    block = np.ones(16 << 20, np.uint8)
    del block  # a freed mapped block raises glibc's dynamic threshold to its size
    block = np.ones(8 << 20, np.uint8)
    del block  # so this one came from the heap, which keeps its pages
    print((anonymous() - before) / 2**20)
    """
)


def retained_mb(mode: str) -> float:
    result = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    return float(result.stdout.split()[-1])


@pytest.mark.skipif(not GLIBC, reason="glibc's allocator only")
def test_a_freed_window_sized_block_goes_back_to_the_system_once_the_threshold_is_fixed():
    """Left dynamic, glibc keeps a freed 8 MiB block after a 16 MiB one (the growth a long run
    showed); fixed, the block is mapped and unmapped, and the process's memory is back."""
    assert retained_mb("dynamic") >= 6
    assert retained_mb("fixed") <= 1


KEEP_CHILD = ANONYMOUS + textwrap.dedent(
    """
    import sys
    import numpy as np
    from iggt.inference.host_allocator import keep_freed_memory


    if sys.argv[1] == "kept":
        assert keep_freed_memory()
    before = anonymous()
    block = np.ones(256 << 20, np.uint8)  # a dense head's map at the demo's size is about 200 MB
    del block
    print((anonymous() - before) / 2**20)
    """
)


def kept_mb(mode: str) -> float:
    """MiB of a freed 256 MiB block that the process still holds."""
    result = subprocess.run([sys.executable, "-c", KEEP_CHILD, mode], capture_output=True, text=True, check=True)
    return float(result.stdout.split()[-1])


@pytest.mark.skipif(not GLIBC, reason="glibc's allocator only")
def test_a_freed_large_block_stays_with_the_process_once_memory_is_kept():
    """Left dynamic, glibc maps a 256 MiB block and unmaps it when freed, so the next one is
    faulted in page by page again; kept, the block stays in the heap for the next allocation."""
    assert kept_mb("dynamic") <= 16
    assert kept_mb("kept") >= 240
