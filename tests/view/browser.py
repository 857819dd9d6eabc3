"""Headless Chromium for the viewer tests: Debian's /usr/bin/chromium driven by Playwright's own driver.

No browser is downloaded (`playwright install` is never run): `make test` installs Debian's
chromium when it is missing. WebGL runs on Chromium's software rasteriser (SwiftShader).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]


def launch(playwright, profile: Path):
    """A persistent context, so the profile is a fresh --user-data-dir of the test's own."""
    if not CHROMIUM.is_file() and not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed; `make test` installs it (apt-get install chromium)")
    return playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=str(CHROMIUM),
        headless=True,
        args=FLAGS,
        viewport={"width": 1400, "height": 1000},
        accept_downloads=True,
    )
