"""The sink metric and its diagnostics, as pure tensor functions (no I/O, no model code).

Conventions: attention weights are (..., queries, keys); positions are 0-indexed in code and
1-indexed in the paper, so the paper's k = 1 is index 0 here.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from ..config import ModelConfig

# owned by the model (its dense path uses them too); re-exported here as part of the metric
from ..model.observe import WeightsForRows, proxy_scores, row_block_size  # noqa: F401


def causal_query_counts(n_keys: int, device=None) -> torch.Tensor:
    """How many causal queries see each key: T - k + 1 for the paper's 1-indexed k."""
    return torch.arange(n_keys, 0, -1, device=device, dtype=torch.float32)


def importance_scores(attn: torch.Tensor) -> torch.Tensor:
    """alpha_k = 1/(T-k+1) * sum_{i>=k} A[i, k] for a causal (..., T, T) attention matrix."""
    n_keys = attn.shape[-1]
    return attn.float().sum(-2) / causal_query_counts(n_keys, attn.device)


def mask_aware_importance(column_sums: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """alpha_k averaged over the queries whose pattern includes k (0 where no query sees k).

    Under plain causal attention `visible` is T - k + 1 and this equals the paper's alpha_k.
    """
    visible = visible.to(column_sums.dtype)
    return torch.where(visible > 0, column_sums / visible.clamp_min(1), torch.zeros_like(column_sums))


def column_sums_by_row_blocks(weights_for_rows: WeightsForRows, n_queries: int, block_rows: int) -> torch.Tensor:
    """Sum attention over queries, one block of rows at a time.

    `weights_for_rows(i0, i1)` returns the (..., i1-i0, keys) weights of queries i0..i1-1. Only one
    block is alive at a time, so memory is O(block_rows * keys) instead of O(queries * keys).
    """
    total = None
    for i0 in range(0, n_queries, block_rows):
        block = weights_for_rows(i0, min(i0 + block_rows, n_queries)).float().sum(-2)
        total = block if total is None else total + block
    return total


def column_sums_with_proxy(weights_for_rows: WeightsForRows, proxy, n_queries: int,
                           block_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Column sums of the row-local `proxy(weights)` and of the weights themselves, from one pass
    over the row blocks: each block of weights is computed once for both."""
    total_proxy = total_raw = None
    for i0 in range(0, n_queries, block_rows):
        w = weights_for_rows(i0, min(i0 + block_rows, n_queries)).float()
        raw, measured = w.sum(-2), proxy(w).sum(-2)
        total_raw = raw if total_raw is None else total_raw + raw
        total_proxy = measured if total_proxy is None else total_proxy + measured
    return total_proxy, total_raw


def prepended_query_alpha(alpha: torch.Tensor, T: int) -> torch.Tensor:
    """An added key's alpha in the paper's convention: its evaluation prepends the added position (a K/KV bias
    key, a learnable sink token) with a query that sees only itself, so alpha = (1 + sum over the T real queries)
    / (T + 1). `alpha` is sinklab's: that sum / T."""
    return (1.0 + alpha * T) / (T + 1)


def prepended_columns(cfg: dict | None) -> range:
    """`ModelConfig.prepended_key_columns` of a recorded sinklab config (summary.json's); HF models (no sinklab
    config) have none. Fields this version does not know are ignored: the layout reads only its own."""
    if not cfg:
        return range(0)
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    return dataclasses.replace(ModelConfig(), **{k: v for k, v in cfg.items() if k in known}).prepended_key_columns


def is_sink(alpha, eps):
    """The Sink threshold, in one place: a head sinks on a position when its importance score is strictly above eps
    (the paper's alpha_k > eps). Tensors and floats alike; the fused kernels apply the same strict comparison."""
    return alpha > eps


def sink_rate(alpha: torch.Tensor, eps: float) -> torch.Tensor:
    """Sink in % as the paper computes it: threshold every sample, then average.

    alpha: (samples, layers, heads, positions...) -> (positions...) percentages. Thresholding each sample
    first differs from thresholding the mean alpha; `mean_alpha` is the threshold-free companion.
    """
    return is_sink(alpha, eps).float().mean(dim=(0, 1, 2)) * 100.0


def mean_alpha(alpha: torch.Tensor) -> torch.Tensor:
    """Mean importance score over samples, layers and heads: (positions...)."""
    return alpha.float().mean(dim=(0, 1, 2))


def first_token_norm_ratio(x: torch.Tensor) -> torch.Tensor:
    """||x_1|| / median_{t>1} ||x_t|| per sample (and head), averaged.

    x: (batch, T, d) residual stream or (batch, heads, T, d) keys/values. Returns a scalar tensor.
    """
    norms = torch.linalg.vector_norm(x, dim=-1, dtype=torch.float32)  # (..., T), no float copy of x
    if norms.shape[-1] < 2:
        return torch.tensor(float("nan"))
    ratio = norms[..., 0] / norms[..., 1:].median(dim=-1).values.clamp_min(1e-12)
    return ratio.mean()


def qk_split(q: torch.Tensor, k: torch.Tensor) -> dict[str, torch.Tensor]:
    """Split q_t . k_j into ||q_t|| ||k_j|| and cos(q_t, k_j), for the first key against the others.

    q: (batch, heads, T, d); k: (batch, kv_heads, T, d), where query head h reads key head
    h // (heads / kv_heads) (grouped-query attention; kv_heads = heads is plain attention).
    Averages run over causal pairs: (t, 1) for every t for the first key, and (t, j) with
    2 <= j <= t for the rest, from prefix sums and small blocks: O(T d), not O(T^2).
    Returns scalar tensors on q's device.
    """
    B, H, T, d = q.shape
    # one float32 copy of q, (B, Hkv, G, T, d); its unit vectors are never materialised
    q = q.to(torch.float32, memory_format=torch.contiguous_format).view(B, k.shape[1], H // k.shape[1], T, d)
    k = k.float().unsqueeze(2)                                  # (B, Hkv, 1, T, d)
    qn, kn = q.norm(dim=-1), k.norm(dim=-1)
    q_inv = 1.0 / qn.clamp_min(1e-12)
    k_unit = k / kn.clamp_min(1e-12).unsqueeze(-1)
    normprod_first = (qn * kn[..., :1]).mean()
    cos_with_first = (q @ k_unit[..., :1, :].transpose(-1, -2)).squeeze(-1) * q_inv   # (B, Hkv, G, T)
    cos_first = cos_with_first.mean()
    if T < 2:
        nan = torch.tensor(float("nan"))
        return {"normprod_first": normprod_first, "normprod_rest": nan, "cos_first": cos_first, "cos_rest": nan}
    n_pairs = T * (T - 1) / 2  # pairs (t, j) with 2 <= j <= t
    kn_rest = kn.cumsum(-1) - kn[..., :1]
    normprod_rest = (qn * kn_rest).sum(-1) / n_pairs
    cos_rest = (causal_pair_sum(q, k_unit, a_weight=q_inv) - cos_with_first.sum(-1)) / n_pairs
    return {"normprod_first": normprod_first, "normprod_rest": normprod_rest.mean(),
            "cos_first": cos_first, "cos_rest": cos_rest.mean()}


def causal_pair_sum(a: torch.Tensor, b: torch.Tensor, block: int = 64,
                    a_weight: torch.Tensor | None = None) -> torch.Tensor:
    """sum over j <= t of w_t a_t . b_j, for a, b (..., T, d) (leading dims broadcast) and row
    weights w (..., T) (default 1): the pairs inside each block of `block` rows by one small masked
    matmul, the pairs across blocks from prefix sums of the block sums. A scan along T would do the
    same in one line, and run 30x slower on a GPU."""
    T = a.shape[-2]
    w = torch.ones(a.shape[:-1], dtype=a.dtype, device=a.device) if a_weight is None else a_weight
    pad = (-T) % block
    if pad:  # zero rows add nothing
        pad_rows = (0, 0, 0, pad)
        a, b, w = F.pad(a, pad_rows), F.pad(b, pad_rows), F.pad(w, (0, pad))
    nb = (T + pad) // block
    a = a.reshape(*a.shape[:-2], nb, block, a.shape[-1])
    b = b.reshape(*b.shape[:-2], nb, block, b.shape[-1])
    w = w.reshape(*w.shape[:-1], nb, block)
    within = ((a @ b.transpose(-1, -2)) * w[..., :, None]).tril().sum((-1, -2, -3))
    b_sums = b.sum(-2)
    before = b_sums.cumsum(-2) - b_sums
    a_sums = (w.unsqueeze(-2) @ a).squeeze(-2)                  # weighted block sums of a, (..., nb, d)
    return within + (a_sums * before).sum((-1, -2))

