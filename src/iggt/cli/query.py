"""`iggt query`: the instances of a saved reconstruction that best match a text."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from iggt.cli.backend_options import add_backend_arguments, backend_info, open_backend


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("result", type=Path, help="export folder written by `iggt reconstruct`")
    parser.add_argument("text", help="what to look for, e.g. 'the red chair'")
    add_backend_arguments(parser)
    parser.add_argument("--top-k", type=int, default=1, help="best matches highlighted (default 1)")
    parser.add_argument("--out", type=Path, help="output folder (default RESULT/query_<text>)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")


def run(args: argparse.Namespace) -> int:
    from iggt.errors import InputError
    from iggt.export.naming import view_names
    from iggt.tasks.open_vocab import OpenVocabConfig, best_views, query, resolve_method
    from iggt.tasks.open_vocab_output import write_query
    from iggt.tasks.output import default_output_folder, write_output_folder
    from iggt.tasks.result import load_result

    if args.top_k < 1:
        raise InputError(f"--top-k must be >= 1, got {args.top_k}")
    result = load_result(args.result)
    backend = open_backend(args)
    ranking = query(result, backend, args.text, OpenVocabConfig(method=args.method))
    info = {**backend_info(args), "method": resolve_method(backend, args.method)}
    slug = re.sub(r"[^a-z0-9]+", "_", args.text.lower()).strip("_")[:40] or "text"
    out = args.out or default_output_folder(result, f"query_{slug}")
    write_output_folder(
        result, out, lambda folder: write_query(result, args.text, ranking, args.top_k, info, folder), args.overwrite
    )
    best = ", ".join(f"{instance_id} ({score:.3f})" for instance_id, score in ranking[: args.top_k])
    print(f"Best match for {args.text!r}: {best}; wrote {out}")
    # The view that shows the best match best (largest, most confident, uncut mask) answers at a glance.
    view = best_views(result, ranking[0][0], 1)[0]
    print(f"Answer highlighted in {out / 'views' / view_names(result.num_views, 'highlight')[view]}")
    return 0
