"""The project's error types. Each message is one line naming the bad value and the fix.

The CLI catches :class:`IGGTError` once and prints its message; library code raises and never exits.
"""

from collections.abc import Mapping


class IGGTError(Exception):
    """Base class for every error a user can cause and fix.

    A message that advises a Python option names it as the API spells it (``overwrite=True``) and
    lists that text in ``options`` under the option's name; another interface (the CLI) rewrites
    it with :meth:`spelled`, so each interface names its own options.
    """

    def __init__(self, message: str, options: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.options = dict(options or {})
        """{text in the message that names an API option: that option's name}"""

    def spelled(self, spellings: Mapping[str, str]) -> str:
        """The message with each option named as ``spellings`` ({option name: text}) spells it."""
        message = str(self)
        for text, name in self.options.items():
            if name in spellings:
                message = message.replace(text, spellings[name])
        return message


def first_line(error: BaseException) -> str:
    """The first line of a foreign error's message (or its type's name), for quoting in our one-line
    messages: library errors can span lines (torch.load's weights-only hints, ffmpeg's logs)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class InputError(IGGTError):
    """Bad user input: missing/empty/corrupt images or videos, wrong arguments."""


class CheckpointError(IGGTError):
    """A model file that is missing, unreadable, or does not match the architecture."""


class SceneFormatError(IGGTError):
    """A scene folder that violates the scene format (docs/scene_format.md)."""


class ConfigError(IGGTError):
    """An unknown preset, field or override value in a config."""


class TrainingError(IGGTError):
    """A training run that cannot go on: a non-finite loss, or weights that are no longer finite."""


class OutputError(IGGTError):
    """A destination that cannot be written now: a full disk, no permission, another run writing it."""
