"""`prepare_stream`: check that the sink cache can serve a loaded model (refused by name otherwise) and wrap it."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import SinklabError
from .rope import layer_specs


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


def prepare_stream(loaded, tokenizer=None) -> StreamModel:
    """Check that the sink cache can serve this model (refused by name otherwise) and wrap it.

    `loaded`: what `sinklab.load.load_model` returns, a transformers `PreTrainedModel` (its tokenizer
    as `tokenizer`, for text), or a sinklab `SinkLM`."""
    if isinstance(loaded, StreamModel):
        return loaded
    if isinstance(loaded, torch.nn.Module):
        loaded = _in_memory(loaded, tokenizer)
    if not hasattr(loaded, "kind"):
        raise SinklabError(f"stream takes a model: what sinklab.load.load_model returns, a transformers "
                           f"PreTrainedModel or a sinklab SinkLM, not {type(loaded).__name__}")
    model = loaded.model
    if loaded.kind == "sinklab":
        from ..model.checkpoint import to_hf_llama

        model = to_hf_llama(model).eval()  # LLaMA-shaped checkpoints only; others get a clear error
    layer_specs(model, loaded.name)
    from ..measure.capture import ATTN_FULL_MASK, ATTN_IMPLEMENTATION

    if getattr(model.config, "_attn_implementation", None) in (ATTN_IMPLEMENTATION, ATTN_FULL_MASK):
        model.set_attn_implementation("sdpa")
    cfg = model.config.get_text_config(decoder=True)
    return StreamModel(model.eval(), getattr(cfg, "max_position_embeddings", None), loaded.name,
                       loaded.tokenizer, getattr(loaded, "hf_tokenizer", None))


@dataclass
class _InMemory:
    """A module the user holds, described as a loaded model is (without the measurement's capture)."""
    model: torch.nn.Module
    kind: str
    name: str
    tokenizer: object = None
    hf_tokenizer: object = None


def _in_memory(module: torch.nn.Module, tokenizer) -> _InMemory:
    from transformers import PreTrainedModel

    from ..measure.probes import from_hf_tokenizer

    if isinstance(module, PreTrainedModel):
        text = from_hf_tokenizer(tokenizer) if tokenizer is not None else None
        name = getattr(module.config, "name_or_path", "") or type(module).__name__
        return _InMemory(module, "hf", name, text, tokenizer)
    if hasattr(module, "cfg") and hasattr(module, "hidden_states"):  # a sinklab decoder
        return _InMemory(module, "sinklab", "sinklab model", tokenizer)
    raise SinklabError(f"{type(module).__name__} is neither a transformers PreTrainedModel nor a sinklab SinkLM; "
                       "the sink cache serves those")
