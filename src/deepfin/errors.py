"""The errors deepfin raises for what a user can fix; each message says what to change.

Every one is a `DeepfinError`, so the command line reports them as one `error:` line; anything
else that escapes is a fault in deepfin, shown with its traceback. Each also derives from the
built-in error a Python caller would expect (ValueError, FileNotFoundError, ...).
"""


class DeepfinError(Exception):
    """Something the user can fix: the message says what happened and what to do."""


class InputFileError(DeepfinError, FileNotFoundError):
    """A file or folder that is missing, unreadable or cannot be written."""


class FormatError(DeepfinError, ValueError):
    """A file whose content is not a format deepfin reads (corrupt, truncated, misnamed)."""


class DataError(DeepfinError, ValueError):
    """Input data that deepfin cannot use."""


class ConfigError(DeepfinError, ValueError):
    """A configuration file, option or parameter that cannot be used."""


class RunFolderError(DeepfinError, ValueError):
    """A run folder that is incomplete, altered, locked or does not match what is asked of it."""


class TrainingError(DeepfinError, FloatingPointError):
    """A training that cannot go on (its loss became non-finite); the message says what to try."""


class NotFittedError(DeepfinError, RuntimeError):
    """An estimator was used before `fit`."""
