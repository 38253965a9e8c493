"""Long-context measurement on one GPU: sinklab's measurement against a plain SDPA forward of the same
model, in one process, on random-initialised models of Llama-3-8B's and SmolLM2-135M's shapes (bf16).

For each shape and T it times `sinklab.measure` (capture, column sums, diagnostics, the tables) and
`model.base_model(ids)` under SDPA, each after a warm-up, as the median of --repeats, and records
their peak memory. `--exact-T` also times the row-block path (SINKLAB_FUSED=0) at that T, and
`--eager-T` eager `output_attentions=True` on the 135M shape.

    python benchmarks/measure_long_context.py --shapes 8b,135m --T 8192:4 32768:1 --out rows.jsonl
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _common import emit  # noqa: E402

SHAPES = {
    "8b": dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=8, rope_theta=500000.0, tie_word_embeddings=False),
    "135m": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                 num_attention_heads=9, num_key_value_heads=3, rope_theta=100000.0, tie_word_embeddings=True),
}


def build(shape: str, max_len: int):
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    cfg = LlamaConfig(**SHAPES[shape], max_position_embeddings=max_len)
    with torch.device("cuda"):
        return AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16).eval()


def timed(fn, repeats: int) -> dict:
    fn()  # warm-up: kernels compiled, allocator warm
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return {"seconds": round(statistics.median(times), 4), "seconds_min": round(min(times), 4),
            "peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3),
            "peak_above_weights_gb": round((torch.cuda.max_memory_allocated() - base) / 2**30, 3)}


def one(model, shape, T, n, repeats, exact_T, eager_T, out, column_acc=("2d",)):
    import sinklab
    from sinklab.load import wrap_module

    ids = torch.randint(0, SHAPES[shape]["vocab_size"], (n, T), device="cuda")
    model.set_attn_implementation("sdpa")
    with torch.inference_mode():
        plain = timed(lambda: model.base_model(input_ids=ids, use_cache=False), repeats)
    loaded = wrap_module(model)
    result = {}

    def run():
        result["r"] = sinklab.measure(loaded, input_ids=ids.cpu(), batch_size=n, progress=False, keep_map_upto=0)
    key = dict(shape=shape, T=T, n=n)
    emit({**key, "method": "plain SDPA forward (no measurement)", **plain}, out)
    for acc in column_acc:  # the column-sum kernel's accumulator (SINKLAB_COLUMN_ACC), side by side
        os.environ["SINKLAB_COLUMN_ACC"] = acc
        fused = timed(run, repeats)
        emit({**key, "method": "sinklab measure (fused)", "column_acc": acc, **fused,
              "time_ratio": round(fused["seconds"] / plain["seconds"], 3),
              "memory_ratio": round(fused["peak_gb"] / plain["peak_gb"], 3),
              "sink_1": result["r"].sink_1, "mean_alpha_1": result["r"].summary["mean_alpha_1"]}, out)
    os.environ.pop("SINKLAB_COLUMN_ACC")
    if T in exact_T:
        os.environ["SINKLAB_FUSED"] = "0"
        exact = timed(run, 1)
        os.environ.pop("SINKLAB_FUSED")
        emit({**key, "method": "sinklab measure (row blocks, SINKLAB_FUSED=0)", **exact,
              "time_ratio": round(exact["seconds"] / plain["seconds"], 3), "sink_1": result["r"].sink_1,
              "mean_alpha_1": result["r"].summary["mean_alpha_1"]}, out)
    if shape == "135m" and T in eager_T:
        model.set_attn_implementation("eager")
        try:
            with torch.inference_mode():
                eager = timed(lambda: model(input_ids=ids, output_attentions=True), 1)
            emit({**key, "method": "eager output_attentions=True", **eager,
                  "time_ratio": round(eager["seconds"] / plain["seconds"], 3)}, out)
        except torch.OutOfMemoryError:
            emit({**key, "method": "eager output_attentions=True", "error": "out of memory"}, out)
        model.set_attn_implementation("sinklab")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="8b,135m")
    ap.add_argument("--T", nargs="+", default=["8192:4", "32768:1"], help="T:n pairs")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--exact-T", type=int, nargs="*", default=[8192])
    ap.add_argument("--eager-T", type=int, nargs="*", default=[8192])
    ap.add_argument("--column-acc", nargs="+", default=["2d"], choices=["2d", "1d"],
                    help="the column-sum kernel's accumulator(s) to time, side by side")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    pairs = [tuple(int(x) for x in p.split(":")) for p in a.T]
    emit({"device": torch.cuda.get_device_name(), "torch": torch.__version__}, a.out)
    for shape in a.shapes.split(","):
        model = build(shape, max(T for T, _ in pairs))
        for T, n in pairs:
            one(model, shape, T, n, a.repeats, a.exact_T, a.eager_T, a.out, a.column_acc)
        del model
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
