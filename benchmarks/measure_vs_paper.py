"""sinklab's measurement against the paper's procedure, side by side in one run, on SmolLM2-135M.

The paper's procedure (sail-sg/Attention-Sink): eager attention, one sample at a time,
`generate(..., output_attentions=True)`, and the full (samples, layers, heads, T, T) tensor kept
before computing alpha. Each side runs in its own subprocess, so peak RSS is its own.

    python benchmarks/measure_vs_paper.py [--n 100] [--T 64]
"""
import argparse
import json
import resource
import subprocess
import sys
import time


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(method: str, n: int, T: int) -> dict:
    import torch

    torch.set_num_threads(2)
    from sinklab.load import load_model
    from sinklab.measure import metrics
    from sinklab.measure.probes import build_inputs
    from sinklab.measure.run import measure

    loaded = load_model()
    ids = build_inputs("natural", loaded.tokenizer, n, T, "never")
    base_rss = rss_mb()
    t0 = time.perf_counter()
    if method == "ours":
        result = measure(loaded, probe="natural", n=n, T=T, bos="never", batch_size=25, progress=False)
        sink = result.sink_1
    else:
        model = loaded.model
        model.set_attn_implementation("eager")
        kept = []
        with torch.no_grad():
            for i in range(len(ids)):
                out = model.generate(ids[i:i + 1], max_new_tokens=1, do_sample=False, output_attentions=True,
                                     return_dict_in_generate=True, pad_token_id=0)
                kept.append(torch.stack([a[0] for a in out.attentions[0]]))  # (layers, heads, T, T)
        full = torch.stack(kept)                                             # (samples, layers, heads, T, T)
        alpha = metrics.importance_scores(full)
        sink = metrics.sink_rate(alpha[..., 0], 0.3).item()
    return {"method": method, "seconds": time.perf_counter() - t0, "peak_rss_mb": rss_mb(),
            "rss_after_load_mb": base_rss, "sink_1": sink}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--T", type=int, default=64)
    ap.add_argument("--child", choices=["ours", "paper"])
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.n, a.T)))
        return
    rows = {}
    for method in ("paper", "ours"):
        out = subprocess.run([sys.executable, __file__, "--child", method, "--n", str(a.n), "--T", str(a.T)],
                             capture_output=True, text=True, check=True)
        rows[method] = json.loads(out.stdout.strip().splitlines()[-1])
    p, o = rows["paper"], rows["ours"]
    extra_p = p["peak_rss_mb"] - p["rss_after_load_mb"]
    extra_o = o["peak_rss_mb"] - o["rss_after_load_mb"]
    print(f"SmolLM2-135M, natural probe, n={a.n}, T={a.T}, 2 CPU threads")
    print(f"{'method':<8} {'seconds':>8} {'peak RSS MB':>12} {'RSS above load MB':>18} {'Sink_1 %':>9}")
    for r, extra in ((p, extra_p), (o, extra_o)):
        print(f"{r['method']:<8} {r['seconds']:8.2f} {r['peak_rss_mb']:12.0f} {extra:18.0f} {r['sink_1']:9.2f}")
    print(f"speed-up {p['seconds'] / o['seconds']:.2f}x; peak RSS ratio {p['peak_rss_mb'] / o['peak_rss_mb']:.2f}x; "
          f"memory above the loaded model ratio {extra_p / max(extra_o, 1):.1f}x")


if __name__ == "__main__":
    main()
