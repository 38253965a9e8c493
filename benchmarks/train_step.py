"""Training-step throughput per model variant at the paper-60m shape (GPU).

One step = forward, backward, clip and fused AdamW, bf16 autocast, torch.compile. FLOPs are
6N + 12 L d T per token, MFU against the datasheet's dense bf16 peak (989 TFLOP/s for an H100 SXM or H200),
and against the measured matmul peak (790 TFLOP/s) as mfu_measured_peak.
    python benchmarks/train_step.py --variants softmax,sigmoid --vocab 8192 --out results.jsonl
Variants that take the dense attention path use smaller micro-batches with the same tokens per step.
"""
import argparse
import time

import torch
from _common import emit, error_text

from sinklab.config import preset
from sinklab.model import attention, variants
from sinklab.model.decoder import SinkLM
from sinklab.train.config import TrainConfig
from sinklab.train.optim import MEASURED_PEAK_FLOPS, make_optimizer, peak_flops

# the shared catalogue at T = 2048, blocks of 128 (2 chosen); DSA keeps 256 tokens, as measured so far
VARIANTS = {**variants.catalogue(block=128, topk=2),
            "dsa_torch_indexer": dict(sparse="dsa", dsa_tokens=256),  # A/B: the selection scores in PyTorch, not Triton
            "moba_16k": dict(sparse="moba", sparse_block=128, sparse_topk=16)}  # T = 16384: 1/8 of the 128 blocks
VARIANTS["dsa"] = dict(VARIANTS["dsa"], dsa_tokens=256)
# the names (and sizes) of the rows in benchmarks/results/: catalogue entry, size changes
PUBLISHED = {
    "softmax": ("default", {}), "geglu": ("ffn_geglu", {}), "relu": ("ffn_relu", {}), "reglu": ("ffn_reglu", {}),
    "gelu": ("ffn_gelu", {}), "swish": ("ffn_swish", {}), "heads_1": ("one_head", {}), "gqa_2": ("gqa", {}),
    "head_sum": ("sum_heads", {}), "sigmoid_logT": ("sigmoid_apple", {}), "window_512": ("window", dict(window=512)),
    "k_bias_shared": ("k_bias", dict(attn_bias_shared=True)), "k_bias_d16": ("k_bias_dim", dict(attn_bias_dim=16)),
    "value_bias_fixed": ("fixed_value_bias", dict(value_bias_scale=1.0)),
    "kernel_identity": ("kernel_identity", dict(kernel_normalizer="sum")),
    "kernel_mlp": ("kernel_mlp", dict(kernel_normalizer="sum")),
    "kernel_elu1_max_abs": ("kernel_elu1", dict(kernel_normalizer="max_abs_sum")),
    "local_global": ("local_global", dict(sparse_window=256, sparse_globals=1)),
    "moba_64": ("moba", dict(sparse_block=64, sparse_topk=3)), "moba_128": ("moba", {}),
    "moba_gated": ("moba", dict(gate="elementwise")),
    "nsa_64": ("nsa", dict(sparse_block=64, sparse_topk=3, sparse_window=256)),
    "nsa_128": ("nsa", dict(sparse_window=256)),
}


def change_of(name: str) -> dict:
    """The config change of a variant: a catalogue entry, or a published row's name for one."""
    entry, sizes = PUBLISHED.get(name, (name, {}))
    return {**VARIANTS[entry], **sizes}


def micro_batch(change: dict, batch: int) -> int:
    """The dense attention path holds (B, H, T, T) scores: micro-batches of 8, same tokens per step."""
    dense = change.get("score") in ("sigmoid", "elu1", "kernel", "softpick") or change.get("head_combine") == "sum"
    return min(8, batch) if dense else batch


def bench(name, vocab, T, batch, steps, warmup, profile=0):
    cfg = preset("paper-60m", vocab_size=vocab, max_seq_len=max(T, 2048), **change_of(name))
    attention.DSA_TRITON_INDEXER = name != "dsa_torch_indexer"
    torch.manual_seed(0)
    model = SinkLM(cfg).cuda()
    opt = make_optimizer(model, TrainConfig(), fused=True)
    micro = micro_batch(change_of(name), batch)
    compiled = torch.compile(model)
    x = torch.randint(0, vocab, (batch, T + 1), device="cuda")

    def step():
        for i in range(0, batch, micro):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = compiled(x[i:i + micro, :-1], x[i:i + micro, 1:])
            (loss * (micro / batch)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    compile_s = time.perf_counter() - t0
    if profile:  # where one step's GPU time goes, by kernel
        from torch.profiler import ProfilerActivity
        with torch.profiler.profile(activities=[ProfilerActivity.CUDA]) as prof:
            step()
            torch.cuda.synchronize()
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=profile, max_name_column_width=70))
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(steps):
        loss = step()
    end.record()
    torch.cuda.synchronize()
    sec = start.elapsed_time(end) / 1000 / steps
    tps = batch * T / sec
    flops = model.flops_per_token(T) * tps
    return {"variant": name, "vocab": vocab, "T": T, "batch": batch, "micro_batch": micro, "tokens_per_s": round(tps),
            "tflops": round(flops / 1e12, 1), "mfu": round(flops / peak_flops(torch.device("cuda")), 4),
            "mfu_measured_peak": round(flops / peak_flops(torch.device("cuda"), MEASURED_PEAK_FLOPS), 4),
            "step_ms": round(sec * 1000, 1), "warmup_s": round(compile_s, 1), "loss": round(loss.item(), 3),
            "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 1), "gpu": torch.cuda.get_device_name()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--vocab", type=int, nargs="+", default=[8192])
    ap.add_argument("--T", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", default=None)
    ap.add_argument("--profile", type=int, default=0, help="print the N costliest GPU kernels of one step")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True
    for vocab in a.vocab:
        for name in a.variants.split(","):
            torch.cuda.reset_peak_memory_stats()
            try:
                row = bench(name, vocab, a.T, a.batch, a.steps, a.warmup, a.profile)
            except Exception as e:  # record the failure and go on: one variant must not sink the sweep
                row = {"variant": name, "vocab": vocab, "error": error_text(e, 200)}
            torch._dynamo.reset()
            emit(row, a.out)


if __name__ == "__main__":
    main()
