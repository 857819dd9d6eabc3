"""`iggt ask`: answer a question about a saved reconstruction with a vision-language chat model.

Nothing is sent anywhere unless --endpoint is given. Without it, the instances are grounded by
the image-text backend's text query (--backend, --backend-path; default the shipped iggt-text) and
the output says so.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from iggt.cli.backend_options import add_backend_arguments, backend_info, open_backend
from iggt.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("result", type=Path, help="export folder written by `iggt reconstruct`")
    parser.add_argument("question", help="e.g. 'where can I sit?' or 'how many chairs are there?'")
    parser.add_argument("--endpoint", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--model", help="model name the endpoint serves (required with --endpoint)")
    parser.add_argument("--mode", choices=("paper", "marks"), default="paper", help="red masks + yes/no, or marks")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="variable holding the API key (optional)")
    parser.add_argument("--views", type=int, default=2, help="views per instance (paper) or in all (marks)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for each answer (120)")
    parser.add_argument("--retries", type=int, default=2, help="retries after time-outs, refusals, 429, 5xx (2)")
    add_backend_arguments(parser)
    parser.add_argument("--out", type=Path, help="output folder (default RESULT/ask)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")


def run(args: argparse.Namespace) -> int:
    from iggt.tasks.chat_client import ChatClient
    from iggt.tasks.open_vocab import OpenVocabConfig
    from iggt.tasks.open_vocab_output import saved_labels
    from iggt.tasks.output import default_output_folder, write_output_folder
    from iggt.tasks.qa import ask_marks, ask_paper, ground_by_text
    from iggt.tasks.qa_output import write_answer
    from iggt.tasks.result import load_result

    if args.endpoint and not args.model:
        raise InputError("--endpoint needs --model, the name of the model the endpoint serves")
    if args.views < 1 or args.retries < 0 or args.timeout <= 0:
        raise InputError("--views must be >= 1, --retries >= 0 and --timeout > 0")
    result = load_result(args.result)
    if args.endpoint:
        client = ChatClient(
            args.endpoint, args.model, os.environ.get(args.api_key_env) or None, args.timeout, args.retries
        )
        ask = ask_paper if args.mode == "paper" else ask_marks
        answer = ask(client, result, args.question, saved_labels(result), args.views)
        info = {"endpoint": args.endpoint, "model": args.model}
    else:
        answer = ground_by_text(result, open_backend(args), args.question, config=OpenVocabConfig(method=args.method))
        info = backend_info(args)
    out = args.out or default_output_folder(result, "ask")
    write_output_folder(result, out, lambda folder: write_answer(result, answer, info, folder), args.overwrite)
    for note in answer.notes:
        print(f"note: {note}")
    print(f"Answer ({answer.mode}): instances {answer.instance_ids}; wrote {out}")
    return 0
