"""The loader picks its next capture route from a refusal's type, never from its wording."""
import pytest

from sinklab.errors import CaptureRefusal, Refusal, SinklabError
from sinklab.measure.load import next_route


@pytest.mark.parametrize("tried, reason, following", [
    ("interface", Refusal.NOT_CAUSAL, "interface_full_mask"),       # it reads the mask: give it eager's
    ("interface", Refusal.FORWARD_FAILS, "interface_full_mask"),
    ("interface", Refusal.NO_ATTENTION_REPORTED, "eager"),          # its own attention classes: hooks
    ("interface_full_mask", Refusal.NOT_CAUSAL, "eager"),
    ("interface_full_mask", Refusal.NO_ATTENTION_REPORTED, "eager"),
    ("eager", Refusal.NOT_CAUSAL, None),                            # the last route: the refusal stands
    ("interface", None, None),                                      # any other SinklabError stands
])
def test_next_route(tried, reason, following):
    assert next_route(tried, reason) == following


def test_a_reworded_message_does_not_change_the_route():
    typed = CaptureRefusal(Refusal.NOT_CAUSAL, "reworded entirely")
    assert isinstance(typed, SinklabError) and str(typed) == "reworded entirely" and typed.reason is Refusal.NOT_CAUSAL
    untyped = SinklabError("m is not a causal LM: its early positions change when a later token does")
    assert next_route("interface", getattr(untyped, "reason", None)) is None
