"""`iggt train`: train or fine-tune a model from a YAML config.

    iggt train --config configs/small_synthetic.yaml train.steps=2000 --max-minutes 9
    torchrun --nproc_per_node=8 -m iggt.cli.train --config configs/finetune_from_vggt.yaml

`python -m iggt.cli.train ...` is `iggt train ...`, the form torchrun launches; it lives here, in
the CLI layer, so that train/ never imports cli/.

Calling the same command again continues from the output folder's latest checkpoint.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from iggt.cli.options import add_device_option
from iggt.errors import ConfigError
from iggt.io.output_dir import check_output_dir, claim_output_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        help="YAML file, or the name of one in ./configs (e.g. small_synthetic); default: built-in defaults",
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.steps=100")
    parser.add_argument("--output-dir", help="same as train.output_dir=...")
    parser.add_argument(
        "--max-minutes",
        type=float,
        help="same as train.max_time_minutes=...: save and exit before this much time",
    )
    add_device_option(parser, default=None, role="same as train.device=...")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    parser.add_argument(
        "--join-transfer",
        metavar="TRANSFER_DIR",
        help="rebuild the checkpoint split into parts in TRANSFER_DIR into --output-dir, then exit",
    )


def run(args: argparse.Namespace) -> int:
    if args.join_transfer:
        return _join_transfer(Path(args.join_transfer), args.output_dir)
    import yaml

    from iggt.train.config import load_run_config

    overrides = list(args.overrides)
    for flag, key in (
        ("output_dir", "train.output_dir"),
        ("max_minutes", "train.max_time_minutes"),
        ("device", "train.device"),
    ):
        if getattr(args, flag) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    config = load_run_config(resolve_config_path(args.config), overrides)
    if args.print_config:
        print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
        return 0
    check_output_dir(config.train.output_dir, replaces_folder=False, label="train.output_dir")
    _configure_logging()
    from iggt.train.distributed import shutdown
    from iggt.train.trainer import Trainer

    trainer = Trainer(config, show_progress=not args.no_progress)
    try:
        result = trainer.run()
    finally:
        shutdown(trainer.context)
    if trainer.context.is_main:
        state = "finished" if result.finished else "stopped at the time limit (run the same command again to continue)"
        print(f"step {result.step}/{config.train.steps} {state}; checkpoint: {result.checkpoint}")
        if result.final_model:
            print(f"final model: {result.final_model}")
    return 0


def _join_transfer(transfer_dir: Path, output_dir: str | None) -> int:
    from iggt.train.checkpoint import is_transfer_checkpoint, join_transfer_checkpoint

    if output_dir is None:
        raise ConfigError("--join-transfer needs --output-dir, the folder to rebuild the checkpoint in")
    if not is_transfer_checkpoint(transfer_dir):
        raise ConfigError(f"{transfer_dir} holds no manifest.json; pass the folder of a transfer checkpoint")
    # The checkpoint replaces the folder as a whole: never a training run's or any other full folder.
    hint = "choose a new or empty folder for the rebuilt checkpoint"
    with claim_output_dir(output_dir, inputs=[transfer_dir], label="--output-dir", overwrite_hint=hint):
        directory = join_transfer_checkpoint(transfer_dir, Path(output_dir))
    print(f"checkpoint rebuilt in {directory} (IGGT.from_pretrained reads it)")
    return 0


def resolve_config_path(name: str | None) -> Path | None:
    """A YAML path as given, or ./configs/<name>.yaml for a bare name."""
    if name is None:
        return None
    path = Path(name)
    if path.is_file():
        return path
    candidate = Path("configs") / f"{name}.yaml"
    if candidate.is_file():
        return candidate
    raise ConfigError(f"config {name!r} not found (also looked for {candidate}); pass a YAML file path")


def _configure_logging() -> None:
    # Only the first rank reports progress; others report warnings and errors.
    level = logging.INFO if os.environ.get("RANK", "0") == "0" else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")


if __name__ == "__main__":
    import sys

    from iggt.cli.main import main

    sys.exit(main(["train", *sys.argv[1:]]))
