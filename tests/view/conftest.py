"""Fixtures of the viewer tests: a made-up export folder and a running server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from planar_result import planar_result

from iggt.view.app import ViewerApp, ViewerConfig
from iggt.view.jobs import JobSettings
from iggt.view.server import ViewerServer, start_server, stop_server
from iggt.view.uploads import UploadLimits

EXAMPLE_SCENE = Path(__file__).resolve().parents[2] / "src" / "iggt" / "assets" / "example_scene"


@pytest.fixture(scope="session")
def planar(tmp_path_factory) -> Path:
    return planar_result(tmp_path_factory.mktemp("planar") / "planar")


@contextmanager
def running_server(
    work_dir: Path,
    results: list[Path],
    limits: UploadLimits | None = None,
    example: Path | None = None,
    max_frames: int | None = None,
) -> Iterator[ViewerServer]:
    """A server of the shipped model on the CPU, with ``results`` opened, stopped on exit."""
    config = ViewerConfig(
        work_dir=work_dir,
        results_dir=work_dir / "results",
        example_scene=example,
        jobs=JobSettings("iggt-small", "cpu", max_frames=max_frames),
        limits=limits or UploadLimits(),
    )
    app = ViewerApp(config)
    for folder in results:
        app.library.add(folder)
    server = start_server(app)
    try:
        yield server
    finally:
        stop_server(server)
