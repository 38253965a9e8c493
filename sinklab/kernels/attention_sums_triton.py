"""Triton kernels of the fused measurement path (see `attention_sums.py`). Imported only when it runs.

Both kernels take q (B, H, T, D) and k (B, Hkv, T, D) by strides; query head h reads KV head
h // GROUP, as transformers' `repeat_kv` pairs them. Offsets are int64, scores float32.
"""
import triton
import triton.language as tl

LOG2E = tl.constexpr(1.4426950408889634)


@triton.jit
def _load_rows(base, offs, stride_t, offs_d, T, D: tl.constexpr):
    ptrs = base + offs[:, None].to(tl.int64) * stride_t + offs_d[None, :]
    return tl.load(ptrs, mask=(offs[:, None] < T) & (offs_d[None, :] < D), other=0.0)


@triton.jit
def _visible(offs_m, offs_n, T, window, WINDOWED: tl.constexpr):
    keep = (offs_m[:, None] >= offs_n[None, :]) & (offs_m[:, None] < T) & (offs_n[None, :] < T)
    if WINDOWED:
        keep = keep & (offs_m[:, None] - offs_n[None, :] < window)
    return keep


@triton.jit
def _column_block(acc, q_base, lse_base, kT, offs_n, start_m, sqt, offs_d, T, window, qk_scale,
                  D: tl.constexpr, BLOCK_M: tl.constexpr, MASKED: tl.constexpr, WINDOWED: tl.constexpr,
                  IEEE: tl.constexpr, ACC_2D: tl.constexpr):
    """Add one block of queries' probabilities to the keys' column sums. Rows past T read lse = +inf
    (probability 0), so only tiles on the diagonal or the window's edge need a mask. ACC_2D keeps a
    (BLOCK_M, BLOCK_N) accumulator, one add per element, instead of a cross-warp column reduction per tile."""
    offs_m = start_m + tl.arange(0, BLOCK_M)
    q = _load_rows(q_base, offs_m, sqt, offs_d, T, D)
    lse = tl.load(lse_base + offs_m, mask=offs_m < T, other=float("inf"))
    if IEEE:
        s = tl.dot(q, kT, input_precision="ieee")
    else:
        s = tl.dot(q, kT)
    p = tl.exp2(s * qk_scale - lse[:, None] * LOG2E)
    if MASKED:
        p = tl.where(_visible(offs_m, offs_n, T, window, WINDOWED), p, 0.0)
    if ACC_2D:
        return acc + p
    return acc + tl.sum(p, axis=0)


@triton.jit
def _zero_columns(BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, ACC_2D: tl.constexpr):
    """The accumulator of one key block's column sums: (BLOCK_M, BLOCK_N) under ACC_2D, else (BLOCK_N,)."""
    # if/else, not an early return: Triton compiles only the branch a constexpr picks, but checks that
    # every return statement it visits gives the same type
    if ACC_2D:
        return tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    else:
        return tl.zeros([BLOCK_N], dtype=tl.float32)


@triton.jit
def _columns(acc, ACC_2D: tl.constexpr):
    """The column sums an accumulator holds: a (BLOCK_M, BLOCK_N) one is reduced over its rows once, here."""
    if ACC_2D:
        return tl.sum(acc, axis=0)
    else:
        return acc


@triton.jit
def column_sums_kernel(Q, K, LSE, OUT, sqb, sqh, sqt, skb, skh, skt, slb, slh, sob, soh,
                       T, H, GROUP, qk_scale, window,
                       D: tl.constexpr, D_PAD: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                       WINDOWED: tl.constexpr, IEEE: tl.constexpr, ACC_2D: tl.constexpr):
    """OUT[b, h, j] = sum over visible queries i of exp2(qk_scale q_i.k_j - LOG2E lse_i).

    One program holds BLOCK_N keys and streams the query blocks that see them, as the attention
    backward's dK loop does: the diagonal tiles (masked), the tiles every key of the block sees
    (no mask), and under a window the tiles at its far edge (masked)."""
    start_n = tl.program_id(0) * BLOCK_N
    bh = tl.program_id(1)
    b, h = (bh // H).to(tl.int64), (bh % H).to(tl.int64)
    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, D_PAD)
    kT = tl.trans(_load_rows(K + b * skb + (h // GROUP) * skh, offs_n, skt, offs_d, T, D))
    q_base = Q + b * sqb + h * sqh
    lse_base = LSE + b * slb + h * slh
    acc = _zero_columns(BLOCK_M, BLOCK_N, ACC_2D)
    # query blocks start at start_n + m * BLOCK_M; those from diag_end on see every key of the block
    diag_end = start_n + tl.cdiv(BLOCK_N, BLOCK_M) * BLOCK_M
    for start_m in range(start_n, tl.minimum(diag_end, T), BLOCK_M):
        acc = _column_block(acc, q_base, lse_base, kT, offs_n, start_m, sqt, offs_d, T, window, qk_scale,
                            D, BLOCK_M, True, WINDOWED, IEEE, ACC_2D)
    full_end = T
    if WINDOWED:  # ... and, under a window, end before a row could miss the block's first key
        full_end = tl.minimum(T, tl.maximum(diag_end, start_n + (window // BLOCK_M) * BLOCK_M))
    for start_m in range(diag_end, full_end, BLOCK_M):
        acc = _column_block(acc, q_base, lse_base, kT, offs_n, start_m, sqt, offs_d, T, window, qk_scale,
                            D, BLOCK_M, False, WINDOWED, IEEE, ACC_2D)
    if WINDOWED:  # the window's far edge: i <= j + window - 1 for the block's last key
        for start_m in range(tl.maximum(full_end, diag_end), tl.minimum(T, start_n + BLOCK_N - 1 + window), BLOCK_M):
            acc = _column_block(acc, q_base, lse_base, kT, offs_n, start_m, sqt, offs_d, T, window, qk_scale,
                                D, BLOCK_M, True, WINDOWED, IEEE, ACC_2D)
    tl.store(OUT + b * sob + h * soh + offs_n, _columns(acc, ACC_2D), mask=offs_n < T)


@triton.jit
def row_lse(Q, K, OUT, sqb, sqh, sqt, skb, skh, skt, sob, soh,
            T, H, GROUP, qk_scale, window,
            D: tl.constexpr, D_PAD: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
            WINDOWED: tl.constexpr, IEEE: tl.constexpr):
    """OUT[b, h, i] = natural log of sum over visible keys j of exp(scale q_i.k_j) (online, as flash)."""
    start_m = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1)
    b, h = (bh // H).to(tl.int64), (bh % H).to(tl.int64)
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, D_PAD)
    q = _load_rows(Q + b * sqb + h * sqh, offs_m, sqt, offs_d, T, D)
    k_base = K + b * skb + (h // GROUP) * skh
    m_i = tl.full([BLOCK_M], -1.0e30, dtype=tl.float32)  # finite: a fully masked block adds exp2(-inf) = 0
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    lo = 0
    if WINDOWED:
        lo = (tl.maximum(0, start_m - window + 1) // BLOCK_N) * BLOCK_N
    hi = tl.minimum(T, start_m + BLOCK_M)
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        k = _load_rows(k_base, offs_n, skt, offs_d, T, D)
        if IEEE:
            s = tl.dot(q, tl.trans(k), input_precision="ieee")
        else:
            s = tl.dot(q, tl.trans(k))
        s = tl.where(_visible(offs_m, offs_n, T, window, WINDOWED), s * qk_scale, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        l_i = l_i * tl.exp2(m_i - m_new) + tl.sum(tl.exp2(s - m_new[:, None]), axis=1)
        m_i = m_new
    l_i = tl.where(l_i > 0, l_i, 1.0)  # rows past T only
    tl.store(OUT + b * sob + h * soh + offs_m, (m_i + tl.log2(l_i)) / LOG2E, mask=offs_m < T)
