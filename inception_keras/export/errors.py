"""The exception every user error of the export raises."""


class ExportError(ValueError):
    """A SavedModel export that cannot be done as asked; the message says what to change."""
