"""`iggt` command: dispatches to one module per subcommand.

Each subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int``. Modules are
imported only when their subcommand runs, so `iggt --help` stays fast.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from importlib import import_module

from iggt.cli.spellings import cli_message
from iggt.errors import IGGTError

# torch's OpenMP threads spin while they wait for work by default. On a CPU shared with other
# processes a spinning thread takes the core its partner needs, and the example reconstruction on
# 2 busy cores took 13 s in the network instead of 7 s (preprocessing 0.9 s instead of 0.02 s).
# Passive waiting keeps the thread count, so the outputs are the same bits. Read by OpenMP when
# torch loads, which no module imported above does; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SUBCOMMANDS = {
    "reconstruct": ("iggt.cli.reconstruct", "images or a video in, a segmented 3D scene out"),
    "synth": ("iggt.cli.synth", "render procedural multi-view scenes with exact ground truth"),
    "train": ("iggt.cli.train", "train a model (single GPU, CPU, or torchrun)"),
    "eval": ("iggt.cli.eval", "evaluate a model on a dataset in the scene format"),
    "track": ("iggt.cli.track", "follow one instance of a saved result through every view"),
    "segment": ("iggt.cli.segment", "label the instances of a saved result with an open vocabulary"),
    "query": ("iggt.cli.query", "find the instances of a saved result that match a text"),
    "ask": ("iggt.cli.ask", "answer a question about a saved result with a vision-language chat model"),
    "serve": ("iggt.cli.serve", "a local web page to run, explore and query reconstructions"),
    "curate": ("iggt.cli.curate", "captures (2D masks, labelled meshes, videos) -> scenes with 3D-consistent IDs"),
}


class Terminated(BaseException):
    """SIGTERM (sent by `timeout`, containers, schedulers) raised like Ctrl-C, so cleanup code runs."""


def _raise_terminated(_signum, _frame) -> None:
    raise Terminated


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """Parser whose subcommand options are loaded only for the subcommand named in ``argv``."""
    requested = {a for a in argv if a in SUBCOMMANDS}
    parser = argparse.ArgumentParser(prog="iggt", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        if name in requested:
            import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    owns_process = argv is None  # the `iggt` command, not a caller's main([...]) inside its own process
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    args.owns_process = owns_process
    if args.version:
        from iggt import __version__

        print(__version__)
        return 0
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        return int(import_module(args._module).run(args) or 0)
    except IGGTError as exc:
        print(f"iggt {args.command}: error: {cli_message(exc, args.command)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"iggt {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"iggt {args.command}: terminated (SIGTERM); temporary files removed", file=sys.stderr)
        return 143
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


if __name__ == "__main__":
    sys.exit(main())
