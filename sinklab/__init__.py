"""sinklab: measure, explain, cause, remove and use attention sinks in language models."""
__version__ = "0.1.0"

from . import measure  # noqa: E402  a callable package: sinklab.measure(model, ...) (see measure/__init__.py)

__all__ = ["measure", "__version__"]
