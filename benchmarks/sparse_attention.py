"""Attention alone, forward + backward, at long context: MoBA-style block selection through a
FlexAttention block mask against dense causal SDPA (flash). One H200, bf16.

    python benchmarks/sparse_attention.py --T 2048 16384 --out results.jsonl
MoBA's time includes the block selection (mean-pooled keys, top-k) and building the block mask.
"""
import argparse

import torch
from _common import emit
import torch.nn.functional as F

from sinklab.model import masks
from sinklab.model.attention import compiled_flex_attention


def time_ms(fn, reps=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / reps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--T", type=int, nargs="+", default=[2048, 16384])
    ap.add_argument("--tokens", type=int, default=65536, help="batch = tokens / T")
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=96)
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--fraction", type=float, default=1 / 8, help="top-k as a fraction of the blocks")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    flex = compiled_flex_attention()
    for T in a.T:
        B, nb = max(1, a.tokens // T), T // a.block
        topk = max(1, round(nb * a.fraction))
        q, k, v = (torch.randn(B, a.heads, T, a.head_dim, device="cuda", dtype=torch.bfloat16, requires_grad=True)
                   for _ in range(3))
        g = torch.randn_like(q)

        def sdpa():
            F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(g)

        def moba():
            chosen = masks.moba_blocks(q.detach(), k.detach(), a.block, topk)
            flex(q, k, v, block_mask=masks.flex_block_mask(chosen, a.block, T)).backward(g)

        chosen = masks.moba_blocks(q.detach(), k.detach(), a.block, topk)
        density = float(chosen.float().mean() / ((nb + 1) / (2 * nb)))  # share of the causal blocks kept
        t_sdpa, t_moba = time_ms(sdpa), time_ms(moba)
        row = {"T": T, "batch": B, "heads": a.heads, "head_dim": a.head_dim, "block": a.block, "topk": topk,
               "blocks": nb, "causal_block_density": round(density, 4), "sdpa_ms": round(t_sdpa, 3),
               "moba_flex_ms": round(t_moba, 3), "moba_speedup": round(t_sdpa / t_moba, 3),
               "gpu": torch.cuda.get_device_name()}
        emit(row, a.out)


if __name__ == "__main__":
    main()
