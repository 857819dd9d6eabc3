"""The image-text backend options `iggt segment`, `iggt query` and `iggt ask` share."""

from __future__ import annotations

import argparse

from iggt.errors import InputError


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend", help="image-text backend: iggt-text (the shipped default), clip, siglip or open_clip"
    )
    parser.add_argument(
        "--backend-path",
        help="the backend's model: a save_pretrained folder, a hub id when online, or an iggt-text file "
        "(default for iggt-text: the shipped weights)",
    )
    parser.add_argument("--device", default="cpu", help="where the backend runs (default cpu)")
    parser.add_argument(
        "--method", choices=("auto", "dense", "crops"), default="auto", help="dense mask pooling or crops (auto)"
    )


def backend_name(args: argparse.Namespace) -> str:
    """The backend the options name: the shipped default when neither --backend nor --backend-path is given."""
    from iggt.tasks.backends import DEFAULT_BACKEND

    if args.backend is None and args.backend_path is not None:
        raise InputError(f"--backend-path {args.backend_path} needs --backend, e.g. --backend clip")
    return args.backend or DEFAULT_BACKEND


def open_backend(args: argparse.Namespace):
    """The backend the options name (default: the shipped iggt-text); one clear line when it cannot load."""
    from iggt.tasks.backends import load_backend

    return load_backend(backend_name(args), args.backend_path, device=args.device)


def backend_info(args: argparse.Namespace) -> dict:
    path = "shipped" if args.backend_path is None else str(args.backend_path)
    return {"backend": backend_name(args), "backend_path": path, "method": args.method}
