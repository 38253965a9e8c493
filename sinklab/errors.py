"""User-facing errors: the CLI prints these as one line and exits non-zero."""
import enum


class SinklabError(Exception):
    """A problem with the user's input (model, probe, option value), not a bug."""


class Refusal(enum.Enum):
    """Why the capture refused a model on the route it tried: what the loader decides its next route by."""
    NOT_CAUSAL = "its early positions change when a later token does"
    NO_ATTENTION_REPORTED = "no attention layer reported to sinklab"
    FORWARD_FAILS = "its forward fails under sinklab's capture"


class CaptureRefusal(SinklabError):
    """A SinklabError with its reason typed, so that rewording a message never changes which route is tried."""

    def __init__(self, reason: Refusal, message: str):
        super().__init__(message)
        self.reason = reason
