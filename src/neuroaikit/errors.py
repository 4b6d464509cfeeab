"""User-facing errors.

Every problem caused by the user's input (a bad argument, a missing or corrupt file,
an unknown layer name, a folder that cannot be written) raises :class:`NeuroAIKitError`
or a subclass, with a one-line message naming the problem. The CLI turns these into
``error: <message>`` and exit status 2, with no traceback (see ``neuroaikit.cli.main``).
"""


class NeuroAIKitError(ValueError):
    """A problem with the user's input, reported in one line."""


class DataError(NeuroAIKitError):
    """A data file or folder is missing, truncated, corrupt or inconsistent."""


class ConfigError(NeuroAIKitError):
    """An argument, configuration value or model specification is invalid."""


class StorageError(NeuroAIKitError):
    """A file or folder cannot be written or replaced: disk full, no permission, read-only
    file system. The message names the path; nothing finished was lost."""


def storage_error(exc: OSError, action: str = "write", path: object = None) -> StorageError:
    """A :class:`StorageError` naming the path and the system's reason for ``exc``."""
    where = path if path is not None else (exc.filename or "?")
    reason = exc.strerror or str(exc)
    return StorageError(f"cannot {action} {where}: {reason}")
