"""Token ids a user hands in, checked once for every entry point (measure, stream): one clear error
for the wrong dtype, shape or range, never an IndexError from deep inside an embedding."""
from __future__ import annotations

import torch

from .errors import SinklabError


def check_token_ids(ids, vocab_size: int | None, what: str = "input_ids", ranks: tuple = (2,)) -> torch.Tensor:
    """`ids` as a long tensor, after checking its dtype (integers), rank (one of `ranks`), size (no
    empty axis) and range (0 <= id < vocab_size, when the vocabulary is known)."""
    if not isinstance(ids, torch.Tensor):
        try:
            ids = torch.as_tensor(ids)
        except (TypeError, ValueError, RuntimeError) as e:
            raise SinklabError(f"{what} must be token ids (a tensor or nested list of integers): {e}") from None
    if ids.dim() not in ranks:
        shapes = " or ".join({1: "(T,)", 2: "(n, T)"}[r] for r in ranks)
        raise SinklabError(f"{what} must have shape {shapes}; got {tuple(ids.shape)}")
    if ids.numel() == 0:
        raise SinklabError(f"{what} is empty (shape {tuple(ids.shape)})")
    if ids.dtype == torch.bool or ids.is_floating_point() or ids.is_complex():
        raise SinklabError(f"{what} must hold integer token ids, not {str(ids.dtype).removeprefix('torch.')}")
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or (vocab_size and high >= vocab_size):
        bad = low if low < 0 else high
        raise SinklabError(f"{what} holds token id {bad}, outside the model's vocabulary of {vocab_size} (0-"
                           f"{vocab_size - 1})" if vocab_size else f"{what} holds a negative token id ({bad})")
    return ids.long()


def embedding_rows(model) -> int | None:
    """How many token ids a model can embed: its input embedding's rows (an HF config's vocabulary may be
    larger than its tokenizer), else its config's vocab_size; None when neither is known."""
    get = getattr(model, "get_input_embeddings", None)
    emb = get() if callable(get) else None
    if isinstance(emb, torch.nn.Embedding):
        return emb.num_embeddings
    return getattr(getattr(model, "cfg", None), "vocab_size", None)
