"""User-facing errors: each says what is wrong and how to fix it, and ends the run with a non-zero exit."""


class LmlabError(Exception):
    """Base class for errors caused by the user's input (config, data, paths), not by a bug."""


class ConfigError(LmlabError):
    """A config value or override is invalid."""


class DataError(LmlabError):
    """Data files are missing, empty, malformed or unreachable."""


class CheckpointError(LmlabError):
    """A checkpoint or export path does not exist or cannot be read."""


class NonFiniteLossError(LmlabError):
    """The training loss became NaN or infinite."""
