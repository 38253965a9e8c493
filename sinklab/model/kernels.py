"""Triton kernels for GPU fast paths. Imported only where a CUDA tensor needs one.

DSA's indexer scores I[b, i, j] = sum_h w[b, i, h] relu(q[b, i, h] . k[b, j]) as one kernel. In
PyTorch the (B, T, heads, T) product goes through memory twice (GEMM out, then the weighted sum),
over the full square; here each (i, j) tile sums its heads in registers, and tiles above the
diagonal are only filled with -inf (a query cannot choose the future).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

TILE = 64


@triton.jit
def _index_scores_kernel(Q, K, W, O, T, s_qb, s_qt, s_qh, s_kb, s_kt, s_wb, s_wt, s_ob, s_ot,
                         HEADS: tl.constexpr, D: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr):
    m, n, b = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    rows = m * BM + tl.arange(0, BM)
    cols = n * BN + tl.arange(0, BN)
    out = O + b * s_ob + rows[:, None] * s_ot + cols[None, :]
    inside = (rows[:, None] < T) & (cols[None, :] < T)
    if n * BN > m * BM + BM - 1:  # the whole tile lies in the future of every row
        tl.store(out, tl.full((BM, BN), float("-inf"), tl.float32).to(O.dtype.element_ty), mask=inside)
        return
    d = tl.arange(0, D)
    k = tl.load(K + b * s_kb + cols[:, None] * s_kt + d[None, :], mask=cols[:, None] < T, other=0.0)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for h in tl.static_range(HEADS):
        q = tl.load(Q + b * s_qb + rows[:, None] * s_qt + h * s_qh + d[None, :], mask=rows[:, None] < T, other=0.0)
        w = tl.load(W + b * s_wb + rows * s_wt + h, mask=rows < T, other=0.0).to(tl.float32)
        acc += tl.maximum(tl.dot(q, tl.trans(k)), 0.0) * w[:, None]
    acc = tl.where(cols[None, :] <= rows[:, None], acc, float("-inf"))
    tl.store(out, acc.to(O.dtype.element_ty), mask=inside)


@triton_op("sinklab::dsa_index_scores", mutates_args={})
def dsa_index_scores(q: torch.Tensor, k: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """q: (B, T, heads, D), k: (B, T, D), w: (B, T, heads) -> (B, T, T) bf16 scores, -inf above the
    diagonal. q and k meet in bf16 on the tensor cores; heads accumulate in float32."""
    B, T, heads, D = q.shape
    q = q.to(torch.bfloat16).contiguous()
    k = k.to(torch.bfloat16).contiguous()
    w = w.contiguous()
    out = torch.empty(B, T, T, device=q.device, dtype=torch.bfloat16)
    grid = (triton.cdiv(T, TILE), triton.cdiv(T, TILE), B)
    wrap_triton(_index_scores_kernel)[grid](q, k, w, out, T, q.stride(0), q.stride(1), q.stride(2),
                                            k.stride(0), k.stride(1), w.stride(0), w.stride(1),
                                            out.stride(0), out.stride(1), HEADS=heads, D=D, BM=TILE, BN=TILE)
    return out
