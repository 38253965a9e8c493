"""Batch-time data interventions of the paper, as pure functions of a (B, T+1) token window."""
from __future__ import annotations

import torch


def random_tokens(x: torch.Tensor, a: int, b: int, vocab_size: int, gen: torch.Generator) -> torch.Tensor:
    """Replace positions [a, b) with uniformly random tokens."""
    x = x.clone()
    x[:, a:b] = torch.randint(vocab_size, (x.shape[0], b - a), generator=gen)
    return x


def fixed_token(x: torch.Tensor, position: int, token: int) -> torch.Tensor:
    """Put the same token at `position` of every sequence (position 0 = a fixed first token, e.g. BOS)."""
    x = x.clone()
    x[:, position] = token
    return x


def prefix_loss_mask(B: int, T: int, prefix_len: int) -> torch.Tensor:
    """Loss only on the tokens after the prefix: target i (token i+1) counts iff i+1 >= prefix_len."""
    mask = torch.zeros(B, T)
    mask[:, max(0, prefix_len - 1):] = 1.0
    return mask
