"""sinklab: measure, explain, cause, remove and use attention sinks in language models."""
__version__ = "0.1.0"


def measure(*args, **kwargs):
    """See `sinklab.measure.run.measure`."""
    from .measure.run import measure as _measure

    return _measure(*args, **kwargs)


__all__ = ["measure", "__version__"]
