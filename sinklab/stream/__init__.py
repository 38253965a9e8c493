"""Use the sink: streaming with a sink-plus-window KV cache (StreamingLLM, Xiao et al. 2024).

`SinkCache` (cache.py) keeps the first `n_sink` tokens and the `window` most recent ones in a static
ring buffer and moves cached RoPE keys to their positions inside the cache with one fused rotation.
It is a transformers `Cache`: pass it to `model.generate(..., past_key_values=SinkCache(model))`.
decode.py holds StreamingLLM's one-token-a-step procedure (optionally compiled), the perplexity
policies and `generate`. Built on transformers' public cache classes; no library `forward` is patched.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .cache import SinkCache, SinkLayer, check_sizes, rotate
from .decode import (DECODE_MODES, POLICIES, Streamer, cache_kwarg, default_window, generate, nll_rows, perplexity,
                     resolve_decode, stream_logits, stream_nll, summarise)
from .rope import layer_specs

__all__ = ["DECODE_MODES", "POLICIES", "SinkCache", "SinkLayer", "StreamModel", "Streamer", "cache_kwarg", "check_sizes",
           "default_window", "generate", "layer_specs", "nll_rows", "perplexity", "prepare", "resolve_decode", "rotate",
           "stream_logits", "stream_nll", "summarise"]


@dataclass
class StreamModel:
    model: torch.nn.Module            # an HF causal LM with RoPE
    max_context: int | None
    name: str
    tokenizer: object = None          # sinklab's TextTokenizer, for text prompts
    hf_tokenizer: object = None       # for decoding generated ids

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def prepare(loaded) -> StreamModel:
    """Check that the sink cache can serve this model (refused by name otherwise) and wrap it."""
    if isinstance(loaded, StreamModel):
        return loaded
    if not hasattr(loaded, "kind"):
        raise TypeError("prepare() takes what sinklab.load.load_model returns")
    model = loaded.model
    if loaded.kind == "sinklab":
        from ..model.checkpoint import to_hf_llama

        model = to_hf_llama(model).eval()  # LLaMA-shaped checkpoints only; others get a clear error
    layer_specs(model, loaded.name)
    from ..measure.capture import ATTN_IMPLEMENTATION

    if getattr(model.config, "_attn_implementation", None) == ATTN_IMPLEMENTATION:
        model.set_attn_implementation("sdpa")
    cfg = model.config.get_text_config(decoder=True)
    return StreamModel(model.eval(), getattr(cfg, "max_position_embeddings", None), loaded.name,
                       loaded.tokenizer, getattr(loaded, "hf_tokenizer", None))
