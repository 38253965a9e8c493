"""Positional schemes: rotary, sinusoidal and learned absolute, ALiBi and T5-style relative bias."""
from __future__ import annotations

import math

import torch
from torch import nn


def rope_cache(T: int, dim: int, theta: float, device=None, offset: int = 0):
    """cos and sin of shape (T, dim) in the half-split (LLaMA / HF) layout."""
    inv = 1.0 / (theta ** (torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim))
    t = torch.arange(offset, offset + T, device=device, dtype=torch.float32)
    freqs = torch.outer(t, inv)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (..., T, [H,] d) with cos/sin broadcastable. The same rotation as HF's `apply_rotary_pos_emb`."""
    half = x.shape[-1] // 2
    x1, x2 = x.float()[..., :half], x.float()[..., half:]
    c1, s1 = cos[..., :half], sin[..., :half]
    return torch.cat([x1 * c1 - x2 * s1, x2 * c1 + x1 * s1], dim=-1).to(x.dtype)


def sinusoidal(T: int, dim: int, device=None) -> torch.Tensor:
    pos = torch.arange(T, device=device, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(T, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)[:, : dim // 2]
    return pe


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """Press et al. (2022): 2^(-8/n * h) for n a power of two, interleaved extras otherwise."""
    def power_of_2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start ** i for i in range(n)]

    if math.log2(n_heads).is_integer():
        return torch.tensor(power_of_2(n_heads))
    closest = 2 ** math.floor(math.log2(n_heads))
    return torch.tensor(power_of_2(closest) + power_of_2(2 * closest)[0::2][: n_heads - closest])


def alibi_by_distance(n_heads: int, T: int, device=None) -> torch.Tensor:
    """(H, T) ALiBi bias -slope * d for distances d = 0..T-1; attention adds it by q - k."""
    return -alibi_slopes(n_heads).to(device)[:, None] * torch.arange(T, device=device, dtype=torch.float32)


def expand_distance_bias(by_distance: torch.Tensor, q0: int, q1: int, n_keys: int) -> torch.Tensor:
    """(H, q1-q0, n_keys) additive bias from a per-distance (H, T) bias; future keys get distance 0
    (they are masked anyway)."""
    # M[i, j] = g[i - j + n_keys - 1] is a Toeplitz matrix: row i is a reversed window of g, so it
    # is a view (unfold) plus a flip, and its gradient is a windowed sum, not a scatter over T^2
    m = torch.arange(q1 + n_keys - 1, device=by_distance.device)
    g = by_distance[:, (m - (n_keys - 1)).clamp(0, by_distance.shape[1] - 1)]
    return g.unfold(-1, n_keys, 1)[:, q0:q1].flip(-1)


def relative_bucket(distance: torch.Tensor, n_buckets: int, max_distance: int) -> torch.Tensor:
    """T5's causal (unidirectional) buckets: exact for small distances, log-spaced beyond."""
    d = distance.clamp_min(0)
    exact = n_buckets // 2
    large = exact + (torch.log(d.float() / exact + 1e-6) / math.log(max_distance / exact)
                     * (n_buckets - exact)).long()
    large = large.clamp_max(n_buckets - 1)
    return torch.where(d < exact, d, large)


def relative_band(max_distance: int, tile: int = 128) -> int:
    """The smallest multiple of `tile` from which every distance falls in the last bucket, so the
    bias is one constant per head beyond it."""
    return -(-max_distance // tile) * tile


class RelativeBias(nn.Module):
    """A learned bias per head and distance bucket, shared by all layers as in T5."""

    def __init__(self, n_heads: int, n_buckets: int, max_distance: int):
        super().__init__()
        self.n_buckets, self.max_distance = n_buckets, max_distance
        self.table = nn.Embedding(n_buckets, n_heads)

    def by_distance(self, T: int) -> torch.Tensor:
        """(H, T): the bias of distances 0..T-1. Attention adds it by q - k, so a kernel reads an
        (H, T) vector instead of an (H, T, T) matrix, and its gradient stays that small."""
        d = torch.arange(T, device=self.table.weight.device)
        return self.table(relative_bucket(d, self.n_buckets, self.max_distance)).t()
