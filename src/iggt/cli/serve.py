"""`iggt serve`: a local web page to run, explore and query reconstructions (docs/viewer.md)."""

from __future__ import annotations

import argparse
import shutil
import signal
import tempfile
import time
from pathlib import Path

from iggt.cli.backend_options import backend_name
from iggt.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="*", type=Path, metavar="RESULT_DIR", help="export folders to open")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument(
        "--results-dir",
        type=Path,
        help="where runs from the page are written, and earlier ones listed "
        "(default: a temporary folder removed at exit)",
    )
    run_group = parser.add_argument_group("runs from the page")
    run_group.add_argument("--model", default=None, help="model of page runs (default: the shipped iggt-small)")
    run_group.add_argument("--device", default="auto", help="device of page runs (default auto)")
    run_group.add_argument("--max-frames", type=int, help="use at most this many views in a run from the page")
    run_group.add_argument("--max-upload-mb", type=float, default=200, help="largest uploaded file (200 MiB)")
    run_group.add_argument("--max-upload-files", type=int, default=200, help="most files in one upload (200)")
    display = parser.add_argument_group("display and queries")
    display.add_argument("--max-points", type=int, default=1_000_000, help="most points drawn (1000000)")
    display.add_argument("--backend", help="image-text backend of text queries (default: the shipped iggt-text)")
    display.add_argument("--backend-path", help="the backend's model (see `iggt query --help`)")
    display.add_argument("--endpoint", help="OpenAI-compatible chat endpoint for questions (default: none)")
    display.add_argument("--chat-model", help="model name the endpoint serves (required with --endpoint)")


def run(args: argparse.Namespace) -> int:
    _check(args)  # before the imports below: a typo costs no wait
    from iggt.cli.reconstruct import EXAMPLE_SCENE
    from iggt.model.hub import DEFAULT_MODEL
    from iggt.view.app import ViewerApp, ViewerConfig
    from iggt.view.jobs import JobSettings
    from iggt.view.server import start_server, stop_server
    from iggt.view.uploads import UploadLimits

    work_dir = Path(tempfile.mkdtemp(prefix="iggt-serve-"))
    try:
        config = ViewerConfig(
            work_dir=work_dir,
            results_dir=args.results_dir or work_dir / "results",
            jobs=JobSettings(args.model or DEFAULT_MODEL, args.device, max_frames=args.max_frames),
            example_scene=EXAMPLE_SCENE if (EXAMPLE_SCENE / "images").is_dir() else None,
            limits=UploadLimits(max_file_bytes=int(args.max_upload_mb * 2**20), max_files=args.max_upload_files),
            max_display_points=args.max_points,
            backend=backend_name(args),
            backend_path=args.backend_path,
            endpoint=args.endpoint,
            chat_model=args.chat_model,
        )
        app = ViewerApp(config)
        for index, folder in enumerate(args.results):
            app.library.add(folder, prepare=index == 0)  # the page opens the first one
        if args.results_dir is not None:
            app.library.add_children(args.results_dir)
        server = start_server(app, args.host, args.port)
        if args.owns_process:
            _take_ctrl_c()
        print(f"iggt serve: open {server.url} in a browser (Ctrl-C to stop)", flush=True)
        try:
            while True:  # until Ctrl-C or SIGTERM (raised by iggt.cli.main)
                # Woken each second: a signal the kernel hands to one of the server's threads is
                # only raised in the main thread once it runs again, never in an untimed wait.
                time.sleep(1)
        finally:
            stop_server(server)
            print("iggt serve: stopped", flush=True)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


def _take_ctrl_c() -> None:
    """Ctrl-C (SIGINT) stops the server even where the process was started with it ignored or blocked.

    A shell starts a background job (``iggt serve &`` in a script) with SIGINT ignored, and a child
    inherits ignored and blocked signals across exec, so Python's own Ctrl-C handler is never
    installed there; a server whose way to stop is Ctrl-C takes it back, as uvicorn does.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def _check(args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port} is not a port; use 0..65535 (0 picks a free one)")
    if args.max_points < 1 or args.max_upload_files < 1 or args.max_upload_mb <= 0:
        raise InputError("--max-points, --max-upload-files and --max-upload-mb must be positive")
    if args.endpoint and not args.chat_model:
        raise InputError("--endpoint needs --chat-model, the name of the model the endpoint serves")
