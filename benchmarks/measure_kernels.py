"""The fused path's parts, timed alone on one GPU, for one attention layer of Llama-3-8B's and
SmolLM2-135M's shapes (bf16): SDPA's forward, FlashAttention's forward with its log-sum-exp, cuDNN's
with its log-sum-exp, and the column-sum kernel at several tile sizes (TFLOP/s counted as the causal
Q K^T it does). `--profile` adds a torch.profiler table of one whole measurement.

    python benchmarks/measure_kernels.py --T 32768 --out rows.jsonl [--profile 135m]
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _common import emit, error_text  # noqa: E402

LAYERS = {"8b": (32, 8, 128), "135m": (9, 3, 64)}
TILES = [(64, 128, 4, 3), (64, 128, 8, 3), (128, 128, 8, 3), (64, 64, 4, 3), (128, 64, 4, 3), (64, 128, 4, 4),
         (128, 128, 8, 2), (64, 256, 8, 3)]


def bench(fn, reps=10):
    fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / reps / 1e3


def layer_rows(shape, T, out):
    from sinklab.kernels import attention_sums

    H, Hkv, D = LAYERS[shape]
    q = torch.randn(1, H, T, D, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(1, Hkv, T, D, device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)
    scale = D ** -0.5
    qk_flops = T * T * D * H  # causal half of 2 T^2 D per head
    key = dict(shape=shape, T=T, heads=H, kv_heads=Hkv, head_dim=D)
    sdpa = bench(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True))
    emit({**key, "part": "SDPA forward (default backend)", "ms": round(sdpa * 1e3, 3),
          "tflops": round(2 * qk_flops / sdpa / 1e12, 1)}, out)
    flash = bench(lambda: attention_sums.flash_with_lse(q, k, v, scale, None))
    emit({**key, "part": "FlashAttention forward + LSE (aten)", "ms": round(flash * 1e3, 3),
          "tflops": round(2 * qk_flops / flash / 1e12, 1)}, out)
    kr, vr = k.repeat_interleave(H // Hkv, 1), v.repeat_interleave(H // Hkv, 1)
    try:
        cudnn = bench(lambda: torch.ops.aten._scaled_dot_product_cudnn_attention(q, kr, vr, None, True, 0.0, True, False,
                                                                                  scale=scale))
        emit({**key, "part": "cuDNN forward + LSE (K, V repeated)", "ms": round(cudnn * 1e3, 3),
              "tflops": round(2 * qk_flops / cudnn / 1e12, 1)}, out)
    except Exception as e:  # a backend this build lacks is recorded, the rest still run
        emit({**key, "part": "cuDNN forward + LSE", "error": error_text(e)}, out)
    lse = attention_sums.flash_with_lse(q, k, v, scale, None)[1]
    d_pad = max(16, 1 << (D - 1).bit_length())
    for (bm, bn, warps, stages), acc_2d in [(tile, acc) for acc in (False, True) for tile in TILES]:
        cfg = dict(D_PAD=d_pad, BLOCK_M=bm, BLOCK_N=bn, num_warps=warps, num_stages=stages, ACC_2D=acc_2d)
        tiles = f"M{bm} N{bn} w{warps} s{stages} acc {'2d' if acc_2d else '1d'}"
        try:
            t = bench(lambda: attention_sums.column_sums(q, k, lse, scale, None, blocks=cfg))
            emit({**key, "part": "column sums", "tiles": tiles, "ms": round(t * 1e3, 3),
                  "tflops": round(qk_flops / t / 1e12, 1)}, out)
        except Exception as e:  # a tile shape that does not compile is recorded, the rest still run
            emit({**key, "part": "column sums", "tiles": tiles, "error": error_text(e)}, out)


def profile(shape, T, n, out_dir):
    import sinklab
    from measure_long_context import build
    from sinklab.load import wrap_module

    model = build(shape, T)
    loaded = wrap_module(model)
    ids = torch.randint(0, 1000, (n, T))
    sinklab.measure(loaded, input_ids=ids, batch_size=n, progress=False, keep_map_upto=0)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU,
                                            torch.profiler.ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        sinklab.measure(loaded, input_ids=ids, batch_size=n, progress=False, keep_map_upto=0)
        torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    averages = prof.key_averages()
    table = (f"wall {wall:.3f} s (profiled)\n"
             + averages.table(sort_by="self_cuda_time_total", row_limit=30, max_name_column_width=70)
             + "\nby CPU time (host-side work and waits):\n"
             + averages.table(sort_by="cpu_time_total", row_limit=25, max_name_column_width=70))
    print(table)
    if out_dir:
        with open(os.path.join(out_dir, f"profile_{shape}_{T}.txt"), "w") as f:
            f.write(table)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--T", type=int, default=32768)
    ap.add_argument("--shapes", default="8b,135m")
    ap.add_argument("--profile", default=None, help="a shape to profile one measurement of")
    ap.add_argument("--n", type=int, default=1, help="samples in the profiled measurement")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    for shape in filter(None, a.shapes.split(",")):
        layer_rows(shape, a.T, a.out)
    if a.profile:
        profile(a.profile, a.T, a.n, os.path.dirname(a.out) if a.out else None)


if __name__ == "__main__":
    main()
