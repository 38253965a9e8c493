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


def build(window: int | None = None, prefix_len: int | None = None, n_global: int = 0,
          sparse: str = "none", sparse_window: int = 256, sparse_globals: int = 1, sparse_stride: int = 128) -> MaskFn:
    """The decoder's static mask: causal or a sparse pattern, narrowed by a window, widened by a
    prefix and global keys (dynamic patterns such as MoBA narrow it further inside attention)."""
    fn = sliding_window(window) if window else causal()
    if sparse == "local_global":
        fn = and_masks(fn, local_global(sparse_window, sparse_globals + n_global))
    elif sparse == "strided":
        fn = and_masks(fn, strided(sparse_stride))
    if prefix_len:
        fn = or_masks(fn, prefix_lm(prefix_len))
    if n_global:
        fn = or_masks(fn, and_masks(causal(), global_keys(n_global)))
    return fn


def is_plain_causal(window: int | None, prefix_len: int | None, T: int, sparse: str = "none") -> bool:
    return (window is None or window >= T) and not prefix_len and sparse == "none"


# -- sparse patterns ---------------------------------------------------------------------------

def local_global(window: int, n_global: int) -> MaskFn:
    """Longformer / BigBird style: a causal local band plus the first `n_global` tokens."""
    return lambda q, k: (k <= q) & ((q - k < window) | (k < n_global))


def strided(stride: int) -> MaskFn:
    """Sparse Transformer (strided): the last `stride` tokens plus every stride-th token before them."""
    return lambda q, k: (k <= q) & ((q - k < stride) | ((q - k) % stride == 0))


def moba_mask(q: torch.Tensor, k: torch.Tensor, block: int, topk: int, force_first: bool = False) -> torch.Tensor:
    """MoBA-style dynamic block selection: (B, H, T, T) boolean mask.

    Keys are split into blocks; each query attends causally within its own block plus the `topk`
    past blocks whose mean-pooled key scores highest against it. No parameters are added. With
    `force_first`, block 0 is always among the selected (as NSA hard-codes the initial block).
    A last partial block (T not a multiple of `block`) is pooled over the keys it has.
    """
    B, H, T, D = q.shape
    nb = -(-T // block)
    with torch.no_grad():
        padded = torch.nn.functional.pad(k.float(), (0, 0, 0, nb * block - T))
        sizes = torch.full((nb,), float(block), device=k.device)
        sizes[-1] = T - (nb - 1) * block
        pooled = padded.view(B, H, nb, block, D).sum(3) / sizes[:, None]          # (B, H, nb, D)
        scores = q.float() @ pooled.transpose(-1, -2)                            # (B, H, T, nb)
        q_block = torch.arange(T, device=q.device) // block
        blocks = torch.arange(nb, device=q.device)
        past = blocks[None, :] < q_block[:, None]                                # (T, nb)
        scores = scores.masked_fill(~past, float("-inf"))
        if force_first:
            scores[..., 0] = torch.where(past[:, 0], torch.tensor(float("inf"), device=q.device), scores[..., 0])
        chosen = torch.zeros_like(scores, dtype=torch.bool)
        if topk > 0 and nb > 1:
            idx = scores.topk(min(topk, nb), dim=-1).indices
            chosen.scatter_(-1, idx, True)
        chosen = (chosen & past) | (blocks[None, :] == q_block[:, None])          # own block always
        token = chosen.repeat_interleave(block, dim=-1)[..., :T]                 # (B, H, T, T)
        return token & dense_mask(causal(), T, T, device=q.device)


def nsa_block_selection(p_compressed: torch.Tensor, block: int, T: int, topk: int, force_first: bool) -> torch.Tensor:
    """NSA-style selection: (B, H, T, T) token mask from compressed-attention block importances.

    p_compressed: (B, H, T, nb) attention of each query on the compressed (complete, past) blocks.
    Each query keeps its own block (causally) plus the `topk` most attended past blocks; with
    `force_first`, block 0 is always kept, as NSA does.
    """
    nb = -(-T // block)  # a last partial block is selectable only as a query's own block
    with torch.no_grad():
        q_block = torch.arange(T, device=p_compressed.device) // block
        blocks = torch.arange(nb, device=p_compressed.device)
        past = blocks[None, :] < q_block[:, None]
        pad = nb - p_compressed.shape[-1]
        score = torch.nn.functional.pad(p_compressed.float(), (0, pad)).masked_fill(~past, float("-inf"))
        if force_first:
            score[..., 0] = torch.where(past[:, 0], torch.tensor(float("inf"), device=score.device), score[..., 0])
        chosen = torch.zeros_like(score, dtype=torch.bool)
        if topk > 0 and nb > 1:
            chosen.scatter_(-1, score.topk(min(topk, nb), dim=-1).indices, True)
        chosen = (chosen & past) | (blocks[None, :] == q_block[:, None])
        token = chosen.repeat_interleave(block, dim=-1)[..., :T]
        return token & dense_mask(causal(), T, T, device=p_compressed.device)


def topk_tokens(index_scores: torch.Tensor, k: int) -> torch.Tensor:
    """DSA-style selection: each query keeps its `k` best-scored past tokens, itself included.

    index_scores: (B, T, T) indexer scores. Returns a (B, 1, T, T) mask shared by all heads.
    """
    B, T, _ = index_scores.shape
    with torch.no_grad():
        causal_mask = dense_mask(causal(), T, T, device=index_scores.device)
        s = index_scores.float().masked_fill(~causal_mask, float("-inf"))
        s = s + torch.diag(torch.full((T,), float("inf"), device=s.device))  # the query's own token always
        chosen = torch.zeros_like(s, dtype=torch.bool).scatter_(-1, s.topk(min(k, T), dim=-1).indices, True)
        return (chosen & causal_mask).unsqueeze(1)


def visible_counts(mask: torch.Tensor) -> torch.Tensor:
    """How many queries see each key: column sums of a (..., Tq, Tk) boolean mask."""
    return mask.float().sum(-2)
