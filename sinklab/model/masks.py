"""Attention masks as small pure functions of (query index, key index), FlexAttention style.

A mask function returns True where the query may attend. They combine with `and_masks` and
`or_masks`, so a new pattern is a new function, not a new module. `dense_mask` materialises one
for the dense and SDPA paths; FlexAttention takes them as they are.
"""
from __future__ import annotations

from typing import Callable

import torch

MaskFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def causal() -> MaskFn:
    return lambda q, k: k <= q


def sliding_window(window: int) -> MaskFn:
    """Query i sees keys i-window+1 .. i."""
    return lambda q, k: (k <= q) & (q - k < window)


def prefix_lm(prefix_len: int) -> MaskFn:
    """The first `prefix_len` tokens see each other; the rest is causal."""
    return lambda q, k: (k <= q) | ((q < prefix_len) & (k < prefix_len))


def global_keys(n: int) -> MaskFn:
    """The first n keys are visible to every query (a sink token kept out of a window)."""
    return lambda q, k: k < n


def and_masks(*fns: MaskFn) -> MaskFn:
    def mask(q, k):
        out = fns[0](q, k)
        for f in fns[1:]:
            out = out & f(q, k)
        return out
    return mask


def or_masks(*fns: MaskFn) -> MaskFn:
    def mask(q, k):
        out = fns[0](q, k)
        for f in fns[1:]:
            out = out | f(q, k)
        return out
    return mask


def dense_mask(fn: MaskFn, n_queries: int, n_keys: int, device=None, q_offset: int = 0) -> torch.Tensor:
    """(n_queries, n_keys) boolean matrix of `fn`, for queries q_offset .. q_offset+n_queries-1."""
    q = torch.arange(q_offset, q_offset + n_queries, device=device)[:, None]
    k = torch.arange(n_keys, device=device)[None, :]
    return fn(q, k)


def build(window: int | None = None, prefix_len: int | None = None, n_global: int = 0) -> MaskFn:
    """The decoder's mask: causal, narrowed by a window, widened by a prefix and global keys."""
    fn = sliding_window(window) if window else causal()
    if prefix_len:
        fn = or_masks(fn, prefix_lm(prefix_len))
    if n_global:
        fn = or_masks(fn, and_masks(causal(), global_keys(n_global)))
    return fn


def is_plain_causal(window: int | None, prefix_len: int | None, T: int) -> bool:
    return (window is None or window >= T) and not prefix_len
