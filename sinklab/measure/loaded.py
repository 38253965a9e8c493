"""`LoadedModel`: what every loader returns and every measurement reads (a model with its capture)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import torch

if TYPE_CHECKING:
    from .capture import AttentionRecorder
    from .probes import TextTokenizer


@dataclass
class LoadedModel:
    name: str
    kind: str                                   # "hf", "gguf" or "sinklab"
    model: torch.nn.Module
    tokenizer: TextTokenizer | None
    max_context: int | None
    n_layers: int
    capture_forward: Callable[[torch.Tensor, AttentionRecorder], None]
    info: dict = field(default_factory=dict)
    hf_tokenizer: object = None                 # the HF tokenizer, for decoding generated text

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device
