"""sinklab: measure, explain, cause, remove and use attention sinks in language models."""
__version__ = "0.1.0"

from . import measure  # noqa: E402  a callable package: sinklab.measure(model, ...) (see measure/__init__.py)

__all__ = ["measure", "SinkTracker", "__version__"]


def __getattr__(name: str):
    """`sinklab.SinkTracker`, imported on first use: `import sinklab` stays light (no trainer, no transformers)."""
    if name == "SinkTracker":
        from .integrations.core import SinkTracker

        return SinkTracker
    raise AttributeError(f"module 'sinklab' has no attribute {name!r}")
