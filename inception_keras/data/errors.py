"""The data layer's user-facing error type."""


class DataError(ValueError):
    """A dataset argument, path or file layout the data layer cannot use.

    The message names the offending path or argument and the layout that was expected; the
    trainer turns it into exit code 2.
    """
