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


def build_mask(window: int | None = None, prefix_len: int | None = None, n_global: int = 0, sparse: str = "none",
               sparse_window: int = 256, sparse_globals: int = 1, sparse_stride: int = 128) -> MaskFn:
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


def select_blocks(scores: torch.Tensor, block: int, topk: int, force_first: bool = False,
                  per_block: bool = True) -> torch.Tensor:
    """Top-k past key blocks from per-token scores: (B, H, rows, nb) boolean, own block included.

    scores: (B, H, T, nb), how much each query token wants each key block. With `per_block`, each
    query block chooses once (rows = query blocks), which makes the pattern block-sparse for
    FlexAttention. It chooses by the summed scores of the block *before* it: its own later tokens
    would leak the future into the choice of its earlier ones. Otherwise every token chooses
    (rows = T), as the MoBA and NSA papers gate. With `force_first`, block 0 is always chosen, as
    NSA hard-codes.
    """
    B, H, T, nb = scores.shape
    device = scores.device
    with torch.no_grad():
        s = scores.float()
        if per_block:
            n_rows = -(-T // block)
            s = torch.nn.functional.pad(s, (0, 0, 0, n_rows * block - T)).view(B, H, n_rows, block, nb).sum(3)
            s = torch.nn.functional.pad(s, (0, 0, 1, 0))[..., :n_rows, :]           # lag by one block
            row_block = torch.arange(n_rows, device=device)
        else:
            row_block = torch.arange(T, device=device) // block
        blocks = torch.arange(nb, device=device)
        past = blocks[None, :] < row_block[:, None]                               # (rows, nb)
        s = s.masked_fill(~past, float("-inf"))
        if force_first:
            s[..., 0] = torch.where(past[:, 0], torch.tensor(float("inf"), device=device), s[..., 0])
        chosen = torch.zeros_like(s, dtype=torch.bool)
        if topk > 0 and nb > 1:
            chosen.scatter_(-1, s.topk(min(topk, nb), dim=-1).indices, True)
        return (chosen & past) | (blocks[None, :] == row_block[:, None])


def blocks_to_token_mask(chosen: torch.Tensor, block: int, T: int, per_block: bool = True) -> torch.Tensor:
    """(B, H, T, T) token mask of a block choice from `select_blocks`, intersected with causal."""
    token = chosen.repeat_interleave(block, dim=-2)[..., :T, :] if per_block else chosen
    token = token.repeat_interleave(block, dim=-1)[..., :T]
    return token & dense_mask(causal(), T, T, device=chosen.device)


def flex_block_mask(chosen: torch.Tensor, block: int, T: int):
    """A FlexAttention BlockMask for a per-query-block choice (T a multiple of `block`).

    Chosen past blocks are full tiles; the own block is the one partial (causal) tile, so the
    kernel skips every tile that was not chosen. The mask_mod states the whole pattern, so the
    eager (reference) FlexAttention, which ignores tiles, computes the same.
    """
    from torch.nn.attention.flex_attention import BlockMask

    B, H, n, _ = chosen.shape
    idx = torch.arange(n, device=chosen.device)
    full = chosen & (idx[None, :] < idx[:, None])
    full_num = full.sum(-1).to(torch.int32)
    full_idx = torch.argsort(full.to(torch.int8), dim=-1, descending=True, stable=True).to(torch.int32)
    own_num = torch.ones(B, H, n, dtype=torch.int32, device=chosen.device)
    own_idx = idx.to(torch.int32).view(1, 1, n, 1).expand(B, H, n, n).contiguous()
    def mask_mod(b, h, q, k):
        return (k <= q) & chosen[b, h, q // block, k // block]

    return BlockMask.from_kv_blocks(own_num, own_idx, full_num, full_idx.contiguous(), BLOCK_SIZE=block,
                                    mask_mod=mask_mod, seq_lengths=(T, T))


def block_means(x: torch.Tensor, block: int) -> torch.Tensor:
    """Mean over each block of positions: (B, H, T, D) -> (B, H, nb, D); a last partial block
    is pooled over the positions it has."""
    B, H, T, D = x.shape
    nb = -(-T // block)
    padded = torch.nn.functional.pad(x.float(), (0, 0, 0, nb * block - T))
    sizes = torch.full((nb,), float(block), device=x.device)
    sizes[-1] = T - (nb - 1) * block
    return padded.view(B, H, nb, block, D).sum(3) / sizes[:, None]


def moba_blocks(q: torch.Tensor, k: torch.Tensor, block: int, topk: int, force_first: bool = False,
                per_block: bool = True) -> torch.Tensor:
    """MoBA-style dynamic block selection (no parameters): queries score each key block by its
    mean-pooled key, and keep their own block plus the `topk` best past blocks."""
    with torch.no_grad():
        scores = q.float() @ block_means(k, block).transpose(-1, -2)           # (B, H, T, nb)
    return select_blocks(scores, block, topk, force_first, per_block)


def moba_mask(q: torch.Tensor, k: torch.Tensor, block: int, topk: int, force_first: bool = False,
              per_block: bool = True) -> torch.Tensor:
    """MoBA-style dynamic block selection as a (B, H, T, T) boolean token mask."""
    return blocks_to_token_mask(moba_blocks(q, k, block, topk, force_first, per_block), block, q.shape[-2],
                                per_block)


def nsa_blocks(p_compressed: torch.Tensor, block: int, T: int, topk: int, force_first: bool,
               per_block: bool = True) -> torch.Tensor:
    """NSA-style selection: block importance is the compressed attention (B, H, T, nb_complete);
    each query (block) keeps its own block plus the `topk` most attended past blocks."""
    nb = -(-T // block)  # a last partial block is selectable only as a query's own block
    scores = torch.nn.functional.pad(p_compressed.float(), (0, nb - p_compressed.shape[-1]))
    return select_blocks(scores, block, topk, force_first, per_block)


def nsa_block_selection(p_compressed: torch.Tensor, block: int, T: int, topk: int, force_first: bool,
                        per_block: bool = True) -> torch.Tensor:
    """NSA-style selection as a (B, H, T, T) token mask."""
    return blocks_to_token_mask(nsa_blocks(p_compressed, block, T, topk, force_first, per_block), block, T,
                                per_block)


# break ties among equal scores by position (a stable sort: the earlier token first), the same on every device;
# torch.topk breaks them differently on a GPU and a CPU (relu scores tie at 0). Off by default: topk is faster
TIES_BY_POSITION = False


def topk_tokens(index_scores: torch.Tensor, k: int) -> torch.Tensor:
    """DSA-style selection: each query keeps its `k` best-scored past tokens, itself included.

    index_scores: (B, T, T) indexer scores. Returns a (B, 1, T, T) mask shared by all heads.
    """
    B, T, _ = index_scores.shape
    k = min(k, T)
    with torch.no_grad():
        causal_mask = dense_mask(causal(), T, T, device=index_scores.device)
        chosen = causal_mask.expand(B, T, T).clone()  # the first k queries see at most k tokens: all
        if T > k:
            own = torch.eye(T, dtype=torch.bool, device=index_scores.device)[k:]
            # in its own dtype: a bf16 topk reads half the bytes
            s = index_scores[:, k:].masked_fill(~causal_mask[k:], float("-inf"))
            s = s.masked_fill(own, float("inf"))  # the query's own token always
            best = (s.sort(dim=-1, descending=True, stable=True).indices[..., :k] if TIES_BY_POSITION
                    else s.topk(k, dim=-1, sorted=False).indices)
            picked = torch.zeros_like(s, dtype=torch.bool).scatter_(-1, best, True)
            chosen[:, k:] = picked & causal_mask[k:]
        return chosen.unsqueeze(1)


def visible_counts(mask: torch.Tensor) -> torch.Tensor:
    """How many queries see each key: column sums of a (..., Tq, Tk) boolean mask."""
    return mask.float().sum(-2)
