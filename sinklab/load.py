"""`sinklab.load`: the public face of model loading, kept where users import it from
(`sinklab.load.load_model()`); the code lives in `sinklab.measure.load`, beside the capture it wires in."""
from .measure.load import (DEFAULT_GGUF, DEFAULT_MODEL, DTYPES, LoadedModel, cache_dir, check_causal,
                           default_gguf_path, load_model, parse_max_memory, wrap_module)

__all__ = ["DEFAULT_GGUF", "DEFAULT_MODEL", "DTYPES", "LoadedModel", "cache_dir", "check_causal",
           "default_gguf_path", "load_model", "parse_max_memory", "wrap_module"]
