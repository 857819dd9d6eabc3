"""`iggt segment`: open-vocabulary labels for the instances of a saved reconstruction, in 2D and 3D."""

from __future__ import annotations

import argparse
from pathlib import Path

from iggt.cli.backend_options import add_backend_arguments, backend_info, open_backend


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("result", type=Path, help="export folder written by `iggt reconstruct`")
    parser.add_argument("--vocab", required=True, help="words separated by commas, e.g. 'chair,table,sofa'")
    add_backend_arguments(parser)
    from iggt.tasks.open_vocab import OpenVocabConfig

    parser.add_argument("--prompt", default=OpenVocabConfig.prompt, help="text template of each word")
    threshold = OpenVocabConfig.other_threshold
    parser.add_argument(
        "--other-threshold", type=float, default=threshold, help=f"best cosine below this: 'other' ({threshold})"
    )
    parser.add_argument("--out", type=Path, help="output folder (default RESULT/segment)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")


def run(args: argparse.Namespace) -> int:
    from iggt.tasks.open_vocab import OpenVocabConfig, parse_vocabulary, resolve_method, segment
    from iggt.tasks.open_vocab_output import SEGMENT_FOLDER, write_segmentation
    from iggt.tasks.output import default_output_folder, write_output_folder
    from iggt.tasks.result import load_result

    vocabulary = parse_vocabulary(args.vocab)
    config = OpenVocabConfig(method=args.method, prompt=args.prompt, other_threshold=args.other_threshold)
    result = load_result(args.result)
    backend = open_backend(args)
    labels = segment(result, backend, vocabulary, config)
    info = {**backend_info(args), "method": resolve_method(backend, args.method), "prompt": args.prompt}
    info["other_threshold"] = args.other_threshold
    out = args.out or default_output_folder(result, SEGMENT_FOLDER)
    write_output_folder(
        result, out, lambda folder: write_segmentation(result, labels, vocabulary, info, folder), args.overwrite
    )
    summary = ", ".join(f"{label.instance_id}:{label.label}" for label in labels)
    print(f"Labelled {len(labels)} instances ({summary}); wrote {out}")
    return 0
