"""Print the markdown tables of BENCHMARKS.md / EXPERIMENTS.md from the stored result files.
    python scripts/tables.py
"""
import json
from pathlib import Path

root = Path(__file__).resolve().parents[1]


def jl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


bench = [r for p in sorted((root / "benchmarks" / "results").glob("bench_g*.jsonl")) for r in jl(p)]
soft = next(r for r in bench if r["variant"] == "softmax" and r["vocab"] == 8192)
print("| variant | vocab | micro-batch | tokens/s | TFLOP/s | MFU | vs softmax (same run) | >= 50 % | peak GB |")
print("|---|---|---|---|---|---|---|---|---|")
for r in bench:
    ratio = r["tokens_per_s"] / soft["tokens_per_s"] if r["vocab"] == 8192 else float("nan")
    mfu_ratio = r["mfu"] / soft["mfu"]
    ok = "yes" if mfu_ratio >= 0.5 else "**no**"
    print(f"| {r['variant']} | {r['vocab']} | {r['micro_batch']} | {r['tokens_per_s']:,} | {r['tflops']} | "
          f"{r['mfu']:.1%} | {mfu_ratio:.0%} of MFU | {ok} | {r['peak_mem_gb']} |")
print()
print("| variant (after the RoPE change) | vocab | tokens/s | TFLOP/s | MFU |")
print("|---|---|---|---|---|")
for r in jl(root / "benchmarks" / "results" / "rebench_after_rope.jsonl"):
    print(f"| {r['variant']} | {r['vocab']} | {r['tokens_per_s']:,} | {r['tflops']} | {r['mfu']:.1%} |")
print()
print("| method | T | seconds | peak GB | peak above weights GB | note |")
print("|---|---|---|---|---|---|")
for r in jl(root / "benchmarks" / "results" / "long_context_h200.jsonl"):
    note = f"max abs alpha diff vs sinklab {r['max_abs_alpha_diff_vs_sinklab']:.1e}" if "max_abs_alpha_diff_vs_sinklab" in r else ""
    print(f"| {r['method']} | {r['T']} | {r['seconds']} | {r['peak_gb']} | {r['peak_above_weights_gb']} | {note} |")
print()
q = root / "experiments" / "results" / "quick60m"
runs = {name: {r["step"]: r for r in jl(q / f"{name}_metrics.jsonl") if "sink_1" in r} for name in ("softmax", "sigmoid", "ddp")}
print("| step | softmax Sink_1 % | softmax val loss | softmax ||h_1||/med | sigmoid (no norm) Sink_1 % (proxy) | sigmoid val loss | sigmoid ||h_1||/med | 2-GPU softmax Sink_1 % | 2-GPU val loss |")
print("|---|---|---|---|---|---|---|---|---|")
for step in sorted(runs["softmax"]):
    s, g, d = runs["softmax"][step], runs["sigmoid"].get(step, {}), runs["ddp"].get(step, {})
    f = lambda r, k: "" if k not in r else (f"{r[k]:.2f}" if isinstance(r[k], float) else str(r[k]))
    print(f"| {step} | {f(s,'sink_1')} | {f(s,'val_loss')} | {f(s,'massive_activation')} | {f(g,'sink_1')} | "
          f"{f(g,'val_loss')} | {f(g,'massive_activation')} | {f(d,'sink_1')} | {f(d,'val_loss')} |")
last = {k: max(v.values(), key=lambda r: r["step"]) for k, v in runs.items()}
print()
print("| run | steady tokens/s | steady MFU | tokens/s incl. eval + sink measurement | MFU incl. eval + measurement |")
print("|---|---|---|---|---|")
for k, r in last.items():
    print(f"| {k} | {r['tokens_per_s']:,} | {r['mfu']:.1%} | {r['tokens_per_s_overall']:,} | {r['mfu_overall']:.1%} |")
print(f"\n2-GPU / 1-GPU tokens/s (steady): {last['ddp']['tokens_per_s'] / last['softmax']['tokens_per_s']:.2f}x; "
      f"including measurement: {last['ddp']['tokens_per_s_overall'] / last['softmax']['tokens_per_s_overall']:.2f}x")
