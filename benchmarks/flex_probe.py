"""Which FlexAttention kernel options compile and how fast, for a learned distance bias (T5
relative) and softpick's positive pass as score_mods, at the paper-60m shape (B 32, H 8, T 2048,
d 96, bf16), forward + backward of one layer. Both were too slow to use (BENCHMARKS.md section 3).

    python benchmarks/flex_probe.py
"""
import json
import time

import torch

from sinklab.model.attention import compiled_flex_attention


def log_expm1(x):  # softpick's positive pass: log(e^x - 1) for x > 0, -inf elsewhere
    keep = x > 1e-6
    xs = torch.where(keep, x, torch.ones_like(x))
    return torch.where(keep, xs + torch.log(-torch.expm1(-xs)), torch.full_like(x, float("-inf")))


def distance_mod(bias, transform=None):
    def mod(score, b, h, q_idx, kv_idx):
        if transform is not None:
            return transform(score)
        return score + bias[h, torch.where(q_idx >= kv_idx, q_idx - kv_idx, 0)]
    return mod

OPTIONS = [None, {"BLOCK_M1": 32, "BLOCK_N1": 64, "BLOCK_M2": 64, "BLOCK_N2": 32},
           {"BLOCK_M1": 32, "BLOCK_N1": 32, "BLOCK_M2": 32, "BLOCK_N2": 32}, {"num_stages": 1}]
B, H, T, D = 32, 8, 2048, 96
for kind in ("relative", "softpick_pos"):
    for opts in OPTIONS:
        torch._dynamo.reset()
        q, k, v = (torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
        bias = torch.randn(H, T, device="cuda", requires_grad=kind == "relative")
        mod = distance_mod(bias, None if kind == "relative" else log_expm1)
        from torch.nn.attention.flex_attention import create_block_mask
        bm = create_block_mask(lambda b, h, qi, ki: ki <= qi, None, None, T, T)
        try:
            t0 = time.perf_counter()
            for i in range(6):
                if i == 3:
                    torch.cuda.synchronize()
                    t1 = time.perf_counter()
                out, lse = compiled_flex_attention()(q, k, v, score_mod=mod, block_mask=bm, return_lse=True, kernel_options=opts)
                (out.sum() + lse.sum()).backward()
            torch.cuda.synchronize()
            row = {"kind": kind, "options": opts, "ms": round((time.perf_counter() - t1) / 3 * 1000, 2),
                   "compile_s": round(t1 - t0, 1)}
        except Exception as e:
            row = {"kind": kind, "options": opts, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
        print(json.dumps(row), flush=True)
