"""The one decoder (`SinkLM`), every variant a field of `sinklab.config.ModelConfig`."""
from .decoder import SinkLM

__all__ = ["SinkLM"]
