"""Errors that semmatch reports to the user instead of a traceback."""

from __future__ import annotations


class SemmatchError(Exception):
    """Base class for problems the user can fix; the CLI prints them and exits with status 2."""

    exit_status = 2


class InputError(SemmatchError):
    """An input file (or one line of it) is invalid.

    Args:
        message: what is wrong and how to fix it.
        path: the file, when the problem is in a file.
        line: the 1-based line number, when the problem is on one line.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        self.reason = message
        location = ""
        if path is not None:
            location = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(location + message)


class ModelFileError(SemmatchError):
    """A model directory is missing a file or contains a corrupt one."""


class ConfigError(SemmatchError):
    """A configuration file or option has an invalid value."""


class TrainingError(SemmatchError):
    """Training cannot continue (for example the loss became NaN); the last good checkpoint is kept."""

    exit_status = 3
