"""The image-text backend options `iggt segment`, `iggt query` and `iggt ask` share."""

from __future__ import annotations

import argparse

from iggt.errors import InputError

NO_BACKEND = (
    "no image-text backend is shipped yet; pass --backend clip|siglip|open_clip and --backend-path "
    "(a save_pretrained folder, or a hub id when online)"
)


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", help="image-text backend: clip, siglip or open_clip")
    parser.add_argument("--backend-path", help="the backend's model: a save_pretrained folder, or a hub id when online")
    parser.add_argument("--device", default="cpu", help="where the backend runs (default cpu)")
    parser.add_argument(
        "--method", choices=("auto", "dense", "crops"), default="auto", help="dense mask pooling or crops (auto)"
    )


def open_backend(args: argparse.Namespace):
    """The backend the options name; one clear line when none or half is given."""
    from iggt.tasks.backends import load_backend

    if args.backend is None and args.backend_path is None:
        raise InputError(NO_BACKEND)
    if args.backend is None or args.backend_path is None:
        raise InputError("--backend and --backend-path go together, e.g. --backend clip --backend-path models/clip")
    return load_backend(args.backend, args.backend_path, device=args.device)


def backend_info(args: argparse.Namespace) -> dict:
    return {"backend": args.backend, "backend_path": str(args.backend_path), "method": args.method}
