"""User-facing errors.

Every problem caused by the user's input (a bad argument, a missing or corrupt file,
an unknown layer name) raises :class:`NeuroAIKitError` or a subclass, with a one-line
message naming the problem. The CLI turns these into ``error: <message>`` and exit
status 2, with no traceback; anything else is a bug and keeps its traceback.
"""


class NeuroAIKitError(ValueError):
    """A problem with the user's input, reported in one line."""


class DataError(NeuroAIKitError):
    """A data file or folder is missing, truncated, corrupt or inconsistent."""


class ConfigError(NeuroAIKitError):
    """An argument, configuration value or model specification is invalid."""
