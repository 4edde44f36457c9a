"""The errors deepfin raises for what a user can fix; each message says what to change."""


class DataError(ValueError):
    """Input data that deepfin cannot use."""


class ConfigError(ValueError):
    """A configuration file or override that cannot be used."""


class NotFittedError(RuntimeError):
    """An estimator was used before `fit`."""
