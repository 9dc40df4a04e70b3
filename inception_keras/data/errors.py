"""The data layer's user-facing error type, and the range check of its numeric arguments."""

import math
import numbers


class DataError(ValueError):
    """A dataset argument, path or file layout the data layer cannot use.

    The message names the offending path or argument and the layout that was expected; the
    trainer turns it into exit code 2.
    """


def check_number(name, value, low, high, *, integer=False):
    """DataError (one line) unless `value` is a finite number (an int if `integer`) in
    [low, high] (`high` None: no upper bound)."""
    kind = numbers.Integral if integer else numbers.Real
    valid = isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(value)
    if valid and low <= value and (high is None or value <= high):
        return
    expected = f">= {low}" if high is None else f"in [{low}, {high}]"
    noun = "an integer" if integer else "a number"
    raise DataError(f"{name} must be {noun} {expected}, got {value!r}")
