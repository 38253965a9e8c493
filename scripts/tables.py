"""Print the markdown tables of BENCHMARKS.md / EXPERIMENTS.md from the stored result files.
    python scripts/tables.py
"""
import json
from pathlib import Path

root = Path(__file__).resolve().parents[1]


def jl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


res = root / "benchmarks" / "results"
# every variant after the RoPE, dense-path and flex changes (runs A, B, C)
rows = jl(res / "train_step" / "variants_h200.jsonl")
soft = next(r for r in rows if r["variant"] == "softmax" and r["vocab"] == 8192 and r["host"] == "A")
print("| variant | vocab | run | micro-batch | tokens/s | TFLOP/s | MFU | MFU / softmax MFU | >= 50 % | peak GB |")
print("|---|---|---|---|---|---|---|---|---|---|")
latest = {}
for r in rows:  # the last working measurement of each (variant, vocab); failed attempts are listed below
    if "error" not in r:
        latest[(r["variant"], r["vocab"])] = r
for r in latest.values():
    ratio = r["mfu"] / soft["mfu"]
    ok = "yes" if ratio >= 0.5 else "**no**"
    print(f"| {r['variant']} | {r['vocab']} | {r['host']} | {r['micro_batch']} | {r['tokens_per_s']:,} | {r['tflops']} | "
          f"{r['mfu']:.1%} | {ratio:.0%} | {ok} | {r['peak_mem_gb']} |")
print("\nfailed attempts:")
for r in rows:
    if "error" in r:
        print(f"- {r['variant']} (host {r['host']}): {r['error'][:110]}")
print()
print("| pattern | run | tokens/s | MFU (dense FLOPs) | MFU / softmax MFU | peak GB | compile s |")
print("|---|---|---|---|---|---|---|")
sp = [r for r in jl(res / "sparse" / "train_step_h200.jsonl")]
soft_sp = next(r for r in sp if r["variant"] == "softmax")
for r in sp:
    if "error" in r:
        print(f"| {r['variant']} | {r['host']} | failed: {r['error'][:60]} | | | | |")
    else:
        print(f"| {r['variant']} | {r['host']} | {r['tokens_per_s']:,} | {r['mfu']:.1%} | {r['mfu'] / soft_sp['mfu']:.0%} | "
              f"{r['peak_mem_gb']} | {r['warmup_s']} |")
print()
print("| T | batch | block | top-k / blocks | causal-block density | SDPA (flash) ms | MoBA (flex) ms | MoBA speed-up |")
print("|---|---|---|---|---|---|---|---|")
for r in jl(res / "sparse" / "attention_h200.jsonl"):
    print(f"| {r['T']} | {r['batch']} | {r['block']} | {r['topk']} / {r['blocks']} | {r['causal_block_density']:.1%} | "
          f"{r['sdpa_ms']} | {r['moba_flex_ms']} | {r['moba_speedup']}x |")
print()
print("| check | max abs logit diff | max rel grad diff | ok |")
print("|---|---|---|---|")
for r in jl(res / "gpu_checks" / "all_variants_h200.jsonl"):
    print(f"| {r['check']} | {r.get('max_abs_logit_diff', 0):.1e} | {r.get('max_rel_grad_diff', 0):.1e} | {r['ok']} |")
print()
q = root / "experiments" / "results" / "emergence"
runs = {name: {r["step"]: r for r in jl(q / f"{file}_metrics.jsonl") if "sink_1" in r}
        for name, file in (("softmax", "softmax_2400"), ("sigmoid", "sigmoid_1300"), ("ddp", "softmax_ddp_1000"))}
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

# the field values timed last, each against the softmax row of its own process
print("\nfield values (benchmarks/results/train_step/field_values_h200.jsonl):")
print("| variant | process | micro-batch | tokens/s | MFU | MFU / softmax MFU | tokens/s / softmax tokens/s | >= 50 % |")
print("|---|---|---|---|---|---|---|---|")
field_rows = [r for r in jl(res / "train_step" / "field_values_h200.jsonl") if "note" not in r and "flop_count" not in r]
for r in field_rows:
    if r["variant"] == "softmax":
        continue
    soft = next(s for s in field_rows if s["variant"] == "softmax" and (s["host"], s["process"]) == (r["host"], r["process"]))
    ratio = r["mfu"] / soft["mfu"]
    print(f"| {r['variant']} | {r['host']} {r['process']} | {r['micro_batch']} | {r['tokens_per_s']:,} | {r['mfu']:.1%} | "
          f"{ratio:.1%} | {r['tokens_per_s'] / soft['tokens_per_s']:.1%} | {'yes' if ratio >= 0.5 else '**no**'} |")
print("softmax rows: " + ", ".join(f"{r['host']} {r['process']} {r['tokens_per_s']:,} ({r['mfu']:.1%})"
                                   for r in field_rows if r["variant"] == "softmax"))
ddp = root / "experiments" / "results" / "ddp"
one, two = (jl(ddp / f"same_batches_{n}_metrics.jsonl") for n in ("single", "ddp"))
print("\n| step | 1 GPU val loss | 2 GPUs (DDP) val loss | difference |")
print("|---|---|---|---|")
for a, b in zip([r for r in one if "val_loss" in r], [r for r in two if "val_loss" in r]):
    print(f"| {a['step']} | {a['val_loss']:.3f} | {b['val_loss']:.3f} | {b['val_loss'] - a['val_loss']:+.3f} |")
print(f"steady 2-GPU / 1-GPU at step 600: {two[-1]['tokens_per_s'] / one[-1]['tokens_per_s']:.3f}x "
      f"({two[-1]['tokens_per_s']:,} / {one[-1]['tokens_per_s']:,}); including evaluation every 100 steps and "
      f"3 sink measurements: {two[-1]['tokens_per_s_overall'] / one[-1]['tokens_per_s_overall']:.3f}x")
f = jl(root / "experiments" / "results" / "fsdp" / "paper1b_metrics.jsonl")
print("FSDP paper-1b, 2 GPUs: " + "; ".join(f"step {r['step']} loss {r['loss']:.3f} {r['tokens_per_s']:,} tok/s MFU {r['mfu']:.1%}"
                                              + (f" val {r['val_loss']:.3f} Sink_1 {r['sink_1']}" if "val_loss" in r else "")
                                              for r in f))

# the quick-60m preset at its full 5,000 steps, softmax against sigmoid without normalisation
sigmoid_dir = root / "experiments" / "results" / "emergence"
proxy_dir = root / "experiments" / "results" / "sigmoid_proxy"
soft_rows = {r["step"]: r for r in jl(sigmoid_dir / "softmax_5000_metrics.jsonl") if "sink_1" in r}
seeds = {s: sigmoid_dir / f"sigmoid_5000_seed{s}_metrics.jsonl" for s in (0, 1, 2, 3)}
sig_rows = {s: {r["step"]: r for r in jl(p) if "sink_1" in r} for s, p in seeds.items() if p.exists()}
print("\nsigmoid against softmax (experiments/results/emergence): quick-60m, 5,000 steps, 2-GPU DDP")
print("| step | softmax Sink_1 % | softmax val loss | softmax ||h_1||/med | "
      + " | ".join(f"sigmoid seed {s} Sink_1 % (proxy)" for s in sig_rows)
      + " | sigmoid seed 0: share-and-weight % | largest weight on token 1 | ||h_1||/med | val loss |")
print("|---" * (8 + len(sig_rows)) + "|")
for step in sorted(soft_rows):
    if step % 500:
        continue
    a, b = soft_rows[step], sig_rows[0].get(step, {})
    f = lambda v, p=2: "" if v is None else f"{v:.{p}f}"  # noqa: E731
    print(f"| {step} | {a['sink_1']:.2f} | {f(a.get('val_loss'))} | {a['massive_activation']:.2f} | "
          + " | ".join(f(sig_rows[s].get(step, {}).get("sink_1")) for s in sig_rows)
          + f" | {f(b.get('sink_1_share_and_weight'))} | {f(b.get('max_head_weight_1'), 3)} | "
            f"{f(b.get('massive_activation'))} | {f(b.get('val_loss'))} |")
print("\n| sigmoid seed | probe windows | Sink_1 % at step 5000 | mean of steps 4000-5000 | readings > 1 % in steps 4000-5000 | first step of the last run below 1 % | val loss at 5000 |")
print("|---|---|---|---|---|---|---|")
for s, m in sig_rows.items():
    last = [m[k]["sink_1"] for k in sorted(m) if k >= 4000]
    steps = sorted(m)
    below_from = next((k for i, k in enumerate(steps) if all(m[j]["sink_1"] < 1 for j in steps[i:])), None)
    n = json.loads((sigmoid_dir / f"sigmoid_5000_seed{s}_config.json").read_text())["train"]["measure_n"]
    print(f"| {s} | {n} | {m[5000]['sink_1']:.2f} | {sum(last) / len(last):.2f} | {sum(v > 1 for v in last)} of {len(last)} | "
          f"{below_from} | {m[5000]['val_loss']:.3f} |")
ends = [m[5000]["sink_1"] for m in sig_rows.values()]
print(f"step 5000 over {len(ends)} seeds: mean {sum(ends) / len(ends):.2f} %, max {max(ends):.2f} %; "
      f"softmax {soft_rows[5000]['sink_1']:.2f} %")
for name in sorted(proxy_dir.glob("*_heads_*.json")):
    h = json.loads(name.read_text())
    quiet = [x for x in h["heads"] if x["sink_share_pct"] > 0]
    print(f"{name.stem}: Sink_1 {h['sink_1_pct']:.2f} % on {h['n']} {h.get('probe', 'windows')} samples; "
          f"{len(quiet)} heads pass eps in some sample, their largest weight on token 1 "
          f"{max((x['mass_on_token_1'] for x in quiet), default=0):.4f}")
fsdp = root / "experiments" / "results" / "fsdp"
killed = jl(fsdp / "sigkill_killed_metrics.jsonl")
after = jl(fsdp / "sigkill_killed_then_resumed_metrics.jsonl")[len(killed):]
a, b = {r["step"]: r["loss"] for r in killed}, {r["step"]: r["loss"] for r in after}
both = sorted(set(a) & set(b))
print(f"\nFSDP on 2 GPUs, SIGKILL after step {max(a)}, resumed from step {min(b) - 1}: steps {both[0]}-{both[-1]} "
      f"max |loss difference| {max(abs(a[k] - b[k]) for k in both):.1e} (loss about {a[both[0]]:.2f}); "
      f"{sum(a[k] == b[k] for k in both)} of {len(both)} equal to 5 decimals; resumed run's step {max(b)}: "
      f"loss {after[-1]['loss']}, val {after[-1]['val_loss']}")
c2 = jl(fsdp / "sigkill_not_killed_metrics.jsonl")
print(f"the FSDP run not killed (same config, another host) at step {c2[-1]['step']}: loss {c2[-1]['loss']} "
      f"(the resumed run: {b[c2[-1]['step']]})")
