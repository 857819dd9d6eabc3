"""The project's error types. Each message is one line naming the bad value and the fix.

The CLI catches :class:`IGGTError` once and prints its message; library code raises and never exits.
"""


class IGGTError(Exception):
    """Base class for every error a user can cause and fix."""


class InputError(IGGTError):
    """Bad user input: missing/empty/corrupt images or videos, wrong arguments."""


class CheckpointError(IGGTError):
    """A model file that is missing, unreadable, or does not match the architecture."""


class SceneFormatError(IGGTError):
    """A scene folder that violates the scene format (docs/scene_format.md)."""


class ConfigError(IGGTError):
    """An unknown preset, field or override value in a config."""


class OutputError(IGGTError):
    """A destination that cannot be written now: a full disk, no permission, another run writing it."""
