"""The fused GPU path: attention output and per-key column sums of the probabilities, no T x T tensor.

For causal softmax attention, A[i, j] = exp(s_ij - lse_i) depends on row i only through its
log-sum-exp. So one fast forward that also returns the row log-sum-exp (FlashAttention's kernel
through aten, or SDPA plus a Triton row-LSE kernel) gives the output, and one more Triton pass that
mirrors the attention backward's dK loop (each program holds a block of keys and streams the query
blocks that see it) gives sum_i A[i, j]. That costs one extra Q K^T, about +50 % of attention FLOPs.

Supports grouped-query attention (no K/V repeat), causal sliding windows (HF convention:
i - j < window) and per-head sink logits in the softmax denominator (gpt-oss). Everything else
(additive masks, softcaps, position biases, unnormalised scores) takes the exact row-block path.
Triton is imported only when this path runs; `TRITON_INTERPRET=1` runs the kernels on a CPU (tests).
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

import torch

LOG2E = 1.4426950408889634
MAX_TOKENS = 1 << 22          # T the kernels are tested towards (offsets are int64); longer T is refused
MAX_HEAD_DIM = 256


@dataclass(frozen=True)
class FusedPlan:
    """How the fused path computes one layer: where the row log-sum-exp comes from."""
    lse_source: str            # "cudnn" or "flash" (aten forwards that return the LSE), or "triton"
                               # (SDPA's output and a Triton LSE kernel)


def fused_plan(device_type: str, dtype: torch.dtype, head_dim: int, T: int, *, softcap=None,
               mask_kind: str = "causal", interpret: bool | None = None) -> FusedPlan | None:
    """A pure dispatch decision: the fused plan for a layer, or None for the exact row-block path.

    mask_kind: "causal" or "window" (causal sliding window) are fused; anything else is not.
    SINKLAB_FUSED=0 in the environment forces the exact path (for side-by-side checks).
    """
    if os.environ.get("SINKLAB_FUSED") == "0":
        return None
    interpret = _interpreting() if interpret is None else interpret
    if device_type != "cuda" and not interpret:
        return None
    if softcap or mask_kind not in ("causal", "window") or head_dim > MAX_HEAD_DIM or T > MAX_TOKENS:
        return None
    if dtype in (torch.float16, torch.bfloat16) and device_type == "cuda" and head_dim % 8 == 0:
        # cuDNN's forward runs at about 1.6x FlashAttention-2's on an H200 (BENCHMARKS.md); it has no window
        cudnn = mask_kind == "causal" and head_dim <= 128 and _cudnn_ok[0] and os.environ.get("SINKLAB_CUDNN") != "0"
        return FusedPlan("cudnn" if cudnn else "flash")  # SINKLAB_CUDNN=0: FlashAttention only (checks)
    return FusedPlan("triton")


_cudnn_ok = [True]  # set to False once cuDNN refuses a shape here: FlashAttention then serves


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def attention_with_column_sums(q, k, v, scale: float, fused: FusedPlan, *, window: int | None = None,
                               sink_logits: torch.Tensor | None = None):
    """Causal attention and its column sums.

    q: (B, H, T, D); k, v: (B, Hkv, T, D) with H a multiple of Hkv. Returns
    (out (B, T, H, D) in q's dtype, col (B, H, T) float32 = sum_i A[i, j] over real keys,
    sink_col (B, H) float32 = the sink logit's share summed over rows, or None).
    """
    out = lse = None
    if fused.lse_source == "cudnn":
        out, lse = _cudnn_with_lse(q, k, v, scale)
    if out is None and fused.lse_source in ("cudnn", "flash"):
        out, lse = flash_with_lse(q, k, v, scale, window)
    if out is None:
        out = _sdpa(q, k, v, scale, window).transpose(1, 2)
        lse = row_logsumexp(q, k, scale, window)
    sink_col = None
    if sink_logits is not None:
        sink = sink_logits.float().view(1, -1, 1)
        lse_all = torch.logaddexp(lse, sink)
        out = (out.float() * torch.exp(lse - lse_all).transpose(1, 2)[..., None]).to(q.dtype)
        sink_col = torch.exp(sink - lse_all).sum(-1)
        lse = lse_all
    return out, column_sums(q, k, lse, scale, window), sink_col


def _cudnn_with_lse(q, k, v, scale):
    """cuDNN's causal forward with the row log-sum-exp; K and V repeated for grouped queries.
    (None, None) if cuDNN refuses the inputs."""
    B, H, T, D = q.shape
    if k.shape[1] != H:
        k, v = k.repeat_interleave(H // k.shape[1], dim=1), v.repeat_interleave(H // v.shape[1], dim=1)
    q, k, v = (canonical_layout(t) for t in (q, k, v))
    try:
        out, lse = torch.ops.aten._scaled_dot_product_cudnn_attention(q, k, v, None, True, 0.0, True, False,
                                                                      scale=scale)[:2]
    except RuntimeError:  # no cuDNN attention for this build, GPU or shape: remember, and use FlashAttention
        _cudnn_ok[0] = False
        return None, None
    return out.transpose(1, 2), lse.reshape(B, H, -1)[..., :T].float()


def canonical_layout(t: torch.Tensor) -> torch.Tensor:
    """t as a contiguous (B, H, T, D) tensor at a 16-byte-aligned address. cuDNN compiles each attention
    graph for the strides and alignment it first sees, and PyTorch's graph cache is keyed by shape, not by
    those: a later call of the same shape in another layout (HF hands q in (B, T, H, D) order, transposed)
    could replay a graph built for the other layout and return wrong outputs. One layout for every call
    leaves no two graphs to confuse."""
    if t.is_contiguous() and t.data_ptr() % 16 == 0:
        return t
    return t.clone(memory_format=torch.contiguous_format)


def flash_with_lse(q, k, v, scale, window):
    """FlashAttention's forward (aten), which returns the row log-sum-exp beside the output."""
    B, H, T, D = q.shape
    left = -1 if window is None else max(0, int(window) - 1)
    out, lse = torch.ops.aten._flash_attention_forward(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), None, None, T, T, 0.0, True, False,
        scale=scale, window_size_left=left, window_size_right=0)[:2]
    return out, lse[..., :T].float()


def _sdpa(q, k, v, scale, window):
    T = q.shape[-2]
    gqa = k.shape[1] != q.shape[1]
    if window is None or window >= T:
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale, enable_gqa=gqa)
    i = torch.arange(T, device=q.device)
    allowed = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] < window)
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=scale, enable_gqa=gqa)


def column_accumulator() -> bool:
    """Whether the column-sum kernel keeps a 2-D accumulator (one add per probability, one column
    reduction per program) or reduces each tile's columns; SINKLAB_COLUMN_ACC=1d|2d picks (benchmarks)."""
    return os.environ.get("SINKLAB_COLUMN_ACC", "2d") != "1d"


def _blocks(head_dim: int, dtype: torch.dtype) -> dict:
    d_pad = max(16, 1 << (head_dim - 1).bit_length())
    if _interpreting():
        return dict(D_PAD=d_pad, BLOCK_M=16, BLOCK_N=32, num_warps=1, num_stages=1)
    if dtype == torch.float32 or d_pad > 128:
        return dict(D_PAD=d_pad, BLOCK_M=64, BLOCK_N=64, num_warps=4, num_stages=2)
    # the fastest of eight tile shapes at head dims 64 and 128 on an H200 (benchmarks/measure_kernels.py)
    return dict(D_PAD=d_pad, BLOCK_M=128, BLOCK_N=64, num_warps=4, num_stages=3)


def column_sums(q, k, lse, scale: float, window: int | None = None, blocks: dict | None = None) -> torch.Tensor:
    """sum_i exp(scale q_i.k_j - lse_i) over the causal (windowed) queries i of each key j: (B, H, T).
    `blocks` overrides the tile sizes (benchmarks)."""
    kernels = _kernels()
    B, H, T, D = q.shape
    group = H // k.shape[1]
    lse = lse.float().contiguous()
    out = torch.empty((B, H, T), device=q.device, dtype=torch.float32)
    cfg = {"ACC_2D": column_accumulator(), **(blocks or _blocks(D, q.dtype))}
    grid = (math.ceil(T / cfg["BLOCK_N"]), B * H)
    kernels.column_sums_kernel[grid](
        q, k, lse, out, *q.stride()[:3], *k.stride()[:3], *lse.stride()[:2], *out.stride()[:2],
        T, H, group, scale * LOG2E, int(window or 0), D=D, WINDOWED=window is not None,
        IEEE=q.dtype == torch.float32, **cfg)
    return out


def row_logsumexp(q, k, scale: float, window: int | None = None) -> torch.Tensor:
    """log sum_j exp(scale q_i.k_j) over the causal (windowed) keys of each query i: (B, H, T)."""
    kernels = _kernels()
    B, H, T, D = q.shape
    group = H // k.shape[1]
    out = torch.empty((B, H, T), device=q.device, dtype=torch.float32)
    cfg = _blocks(D, q.dtype)
    grid = (math.ceil(T / cfg["BLOCK_M"]), B * H)
    kernels.row_lse[grid](
        q, k, out, *q.stride()[:3], *k.stride()[:3], *out.stride()[:2],
        T, H, group, scale * LOG2E, int(window or 0), D=D, WINDOWED=window is not None,
        IEEE=q.dtype == torch.float32, **cfg)
    return out


@functools.lru_cache(maxsize=None)
def _kernels():
    """Compile-on-demand: Triton is imported only when the fused path runs."""
    from . import attention_sums_triton as fused_kernels

    return fused_kernels
