"""User-facing errors: the CLI prints these as one line and exits non-zero."""


class SinklabError(Exception):
    """A problem with the user's input (model, probe, option value), not a bug."""
