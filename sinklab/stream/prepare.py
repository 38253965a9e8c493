"""`prepare`: check that the sink cache can serve a loaded model (refused by name otherwise) and wrap it."""
from __future__ import annotations

from dataclasses import dataclass

import torch

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
    from ..measure.capture import ATTN_FULL_MASK, ATTN_IMPLEMENTATION

    if getattr(model.config, "_attn_implementation", None) in (ATTN_IMPLEMENTATION, ATTN_FULL_MASK):
        model.set_attn_implementation("sdpa")
    cfg = model.config.get_text_config(decoder=True)
    return StreamModel(model.eval(), getattr(cfg, "max_position_embeddings", None), loaded.name,
                       loaded.tokenizer, getattr(loaded, "hf_tokenizer", None))
