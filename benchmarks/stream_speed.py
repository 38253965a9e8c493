"""Streaming speed on SmolLM2-135M (CPU): sink cache tokens/s against position, and against
sliding-window recomputation, side by side in one run.
    python benchmarks/stream_speed.py [--tokens 2048] [--cache 256]
"""
import argparse
import json
import lzma
import time
from pathlib import Path

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--cache", type=int, default=256)
    ap.add_argument("--recompute", type=int, default=64, help="positions scored by recomputation")
    ap.add_argument("--text", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "austen.txt.xz"))
    a = ap.parse_args()
    torch.set_num_threads(2)
    from sinklab import stream
    from sinklab.load import load_model

    loaded = load_model()
    sm = stream.prepare(loaded)
    ids = torch.tensor([loaded.tokenizer.encode(lzma.open(a.text, "rt").read()[:200000])[: a.tokens]])
    cache = stream.make_cache(4, a.cache - 4, sm.inv_freq)
    rates, t0, chunk = [], time.perf_counter(), 256
    for t in range(a.tokens):
        stream.step(sm, cache, ids[:, t:t + 1])
        if (t + 1) % chunk == 0:
            now = time.perf_counter()
            rates.append({"positions": f"{t + 2 - chunk}-{t + 1}", "tokens_per_s": round(chunk / (now - t0), 1),
                          "cache_entries": cache.get_seq_length()})
            t0 = now
    t1 = time.perf_counter()
    positions = list(range(a.tokens - a.recompute, a.tokens))
    with torch.inference_mode():
        for t in positions:
            sm.model(input_ids=ids[:, max(0, t - a.cache + 1): t + 1])
    recompute_rate = len(positions) / (time.perf_counter() - t1)
    sink_rate = sum(r["tokens_per_s"] for r in rates[1:]) / max(1, len(rates) - 1)
    for r in rates:
        print(json.dumps(r))
    print(f"sink cache (4 + {a.cache - 4}): {sink_rate:.1f} tokens/s past the first window; "
          f"recomputing a {a.cache}-token window per token: {recompute_rate:.2f} tokens/s; "
          f"speed-up {sink_rate / recompute_rate:.1f}x")


if __name__ == "__main__":
    main()
