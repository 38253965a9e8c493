"""Use the sink: streaming with a sink-plus-window KV cache (StreamingLLM, Xiao et al. 2024).

`SinkCache` (cache.py) keeps the first `n_sink` tokens and the `window` most recent ones in a static
ring buffer and moves cached RoPE keys to their positions inside the cache with one fused rotation.
It is a transformers `Cache`: pass it to `model.generate(..., past_key_values=SinkCache(model))`.
decode.py holds StreamingLLM's one-token-a-step procedure (optionally compiled), the perplexity
policies and `generate`; options.py the sizes of a cache (`cache_sizes`) and the temperature check, both
plain arithmetic. `KeptTokens` (cache.py) optionally keeps later sink tokens, named by id, past the window.
Built on transformers' public cache classes; no library `forward` is patched.
"""
from __future__ import annotations

from .cache import KeptTokens, SinkCache, SinkLayer, check_sizes, rotate
from .decode import (DECODE_MODES, DEFAULT_POLICIES, POLICIES, Streamer, cache_kwarg, default_window, generate,
                     nll_rows, perplexity, resolve_decode, stream_logits, stream_nll, summarise)
from .options import MIN_TEMPERATURE, OPTION_NAMES, cache_sizes, check_temperature
from .prepare import StreamModel, prepare_stream
from .rope import layer_specs

__all__ = ["DECODE_MODES", "DEFAULT_POLICIES", "KeptTokens", "MIN_TEMPERATURE", "OPTION_NAMES", "POLICIES",
           "SinkCache", "SinkLayer", "StreamModel", "Streamer", "cache_kwarg", "cache_sizes", "check_sizes",
           "check_temperature", "default_window", "generate", "layer_specs", "nll_rows", "perplexity",
           "prepare_stream", "resolve_decode", "rotate", "stream_logits", "stream_nll", "summarise"]
