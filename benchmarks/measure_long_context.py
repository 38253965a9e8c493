"""Long-context measurement on the GPU: sinklab's streamed capture against a plain SDPA forward and
against eager `output_attentions=True`, on a random-initialised model of SmolLM2-135M's shape.

    python benchmarks/measure_long_context.py --T 32768 --eager-T 8192
"""
import argparse
import json
import time

import torch


def smollm2_shape(max_len):
    from transformers import AutoModelForCausalLM, LlamaConfig

    cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                      num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=max_len,
                      rope_theta=100000.0, tie_word_embeddings=True)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16).cuda().eval()


def peak(fn):
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    t0 = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return {"seconds": round(time.perf_counter() - t0, 3),
            "peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3),
            "peak_above_weights_gb": round((torch.cuda.max_memory_allocated() - base) / 2**30, 3)}, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--T", type=int, default=32768)
    ap.add_argument("--eager-T", type=int, default=8192)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    from sinklab.load import wrap_module
    from sinklab.measure import capture, metrics

    model = smollm2_shape(max(a.T, a.eager_T))
    rows = []
    for T in sorted({a.eager_T, a.T}):
        ids = torch.randint(0, 49152, (1, T), device="cuda")
        model.set_attn_implementation("sdpa")
        with torch.inference_mode():
            model.base_model(input_ids=ids, use_cache=False)  # warm-up
            stats, _ = peak(lambda: model.base_model(input_ids=ids, use_cache=False))
        rows.append({"method": "plain SDPA forward (no measurement)", "T": T, **stats})
        loaded = wrap_module(model)
        rec = capture.AttentionRecorder()
        stats, _ = peak(lambda: loaded.capture_forward(ids, rec))
        alpha = torch.stack([rec.layers[l].alpha for l in sorted(rec.layers)], 1)
        rows.append({"method": "sinklab streamed capture", "T": T, **stats,
                     "sink_1": round(metrics.sink_rate(alpha[..., 0], 0.3).item(), 3)})
        if T == a.eager_T:
            model.set_attn_implementation("eager")
            try:
                with torch.inference_mode():
                    stats, out = peak(lambda: model(input_ids=ids, output_attentions=True))
                eager_alpha = torch.stack([metrics.importance_scores(x.float()) for x in out.attentions], 1).cpu()
                del out
                rows.append({"method": "eager output_attentions=True", "T": T, **stats,
                             "max_abs_alpha_diff_vs_sinklab": float((eager_alpha - alpha).abs().max())})
            except torch.OutOfMemoryError:
                rows.append({"method": "eager output_attentions=True", "T": T, "error": "out of memory"})
    for r in rows:
        print(json.dumps(r), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
