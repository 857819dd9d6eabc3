"""How each subcommand spells the options that library errors advise in Python terms.

Library errors name an option as the API spells it (``overwrite=True``) and tag that text with
the option's name (``IGGTError.options``); this table, the one place that knows both, gives the
command line's spelling, so a CLI error never advises a keyword argument.
"""

from __future__ import annotations

from iggt.errors import IGGTError

_RELEASED_WEIGHTS = "weights saved by iggt, the official IGGT checkpoint or VGGT-1B"
COMMON = {"overwrite": "--overwrite"}
BY_COMMAND: dict[str, dict[str, str]] = {
    "reconstruct": {
        "formats": "--formats",  # replaces "export formats"
        "min_instance_size": "--min-instance-size ",  # replaces "InstanceConfig.min_instance_size="
        "mode_pad": "--mode pad",
        "overlap": "--overlap ",  # replaces "overlap=" before the number
        "max_frames": "--max-frames",  # replaces "max_frames="
        "window": "--window ",
        "store": "--store ",  # replaces "store=" before the folder
        "strict": f"pass --model {_RELEASED_WEIGHTS}",
    },
    "eval": {"strict": f"pass --model {_RELEASED_WEIGHTS}"},
    "synth": {"size": "--size "},  # replaces "image size " before HxW
    "train": {"strict": f"point model.init_checkpoint at {_RELEASED_WEIGHTS}"},
}


def cli_message(error: IGGTError, command: str) -> str:
    """``error``'s message with its options spelled as ``iggt <command>`` spells them."""
    return error.spelled({**COMMON, **BY_COMMAND.get(command, {})})
