"""A live elapsed-time line on stderr for a stage that reports no progress of its own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm.auto import tqdm

REFRESH_SECONDS = 0.5


@contextmanager
def stage_progress(description: str, enabled: bool = True) -> Iterator[None]:
    """Show ``description: <elapsed>`` while the block runs, refreshed from a helper thread."""
    if not enabled:
        yield
        return
    bar = tqdm(total=1, desc=description, bar_format="{desc}: {elapsed}", leave=False)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(REFRESH_SECONDS):
            bar.refresh()

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()
        bar.update(1)
        bar.close()
