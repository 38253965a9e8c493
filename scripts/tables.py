"""Rebuild the tables of BENCHMARKS.md and EXPERIMENTS.md from the stored results.

    python scripts/tables.py                      # every table, each under its name
    python scripts/tables.py NAME [NAME ...]      # these tables (--list names them)
    python scripts/tables.py NAME --results DIR   # NAME from the files a scripts/gpu/*.sh run wrote to its $OUT
    python scripts/tables.py --check              # every doc table marked <!-- tables.py NAME --> equals its rebuild
    python scripts/tables.py --write              # replace the marked doc tables by their rebuilds

A table is printed first; lines after it (numbers the docs' text cites) are notes, and --check compares only
the table. Each doc table sits right below its marker line.
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "results"
EXP = ROOT / "experiments" / "results"
TABLES = {}  # name -> (doc, recorded folder, function(folder) -> (table lines, note lines))


def table(name, doc, folder):
    def register(fn):
        TABLES[name] = (doc, folder, fn)
        return fn
    return register


def jl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def md(header, rows):
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + \
           ["| " + " | ".join("" if c is None else str(c) for c in r) + " |" for r in rows]


def f2(v, p=2):
    return "" if v is None else f"{v:.{p}f}"


RECORDED_PEAK, DATASHEET_PEAK = 790e12, 989e12  # rows without mfu_measured_peak were counted against the first


def mfu(r: dict, key: str = "mfu") -> float:
    """MFU against the datasheet's dense bf16 peak (H100 SXM and H200: 989 TFLOP/s), from a row recorded against
    either peak: older rows were counted against the measured 790 TFLOP/s and carry no mfu_measured_peak."""
    return r[key] if f"{key}_measured_peak" in r else r[key] * RECORDED_PEAK / DATASHEET_PEAK


def pct(v, p=1):
    return f"{v:.{p}%}"


def by_step(rows, key="sink_1"):
    return {r["step"]: r for r in rows if key in r}


def steady_median(rows, first=30):
    """The median of the logged 10-step training intervals from step `first` (no evaluation or measurement in them)."""
    return statistics.median(r["tokens_per_s"] for r in rows if r["step"] >= first and "tokens_per_s" in r
                             and "val_loss" not in r and "sink_1" not in r)


# ---------------------------------------------------------------- BENCHMARKS.md §3, §3b: the training step

def host(r):
    return r["host"].split(" (")[0]  # "LABEL (a note on that machine's code)" -> "LABEL"


def softmax_of(rows, r, fallback):
    """The softmax row (vocabulary 8192) of r's host and process (of r's file first), else `fallback`."""
    same = [s for s in rows if s["variant"] == "softmax" and s.get("vocab") == 8192 and "error" not in s
            and (host(s), s.get("process")) == (host(r), r.get("process"))]
    return next((s for s in same if s["_file"] == r["_file"]), same[0] if same else fallback)


# rows a later code change superseded (git history keeps the code they measured)
SUPERSEDED = {
    ("A", None, "relative"): "a learned bias inside FlexAttention's score_mod: no valid kernel configuration",
    ("A", None, "softpick"): "two FlexAttention passes: did not compile",
    ("B", None, "relative"): "a learned bias inside FlexAttention's score_mod, removed",
    ("B", None, "softpick"): "two FlexAttention passes, removed",
    ("C", None, "relative"): "the dense path, before the band + far split",
    ("C", None, "dsa"): "DSA's first code; §3b has its current step",
    ("B", None, "moba_sink_token"): "the SDPA fallback, before flex with the sink key by LSE",
}
STEP_LABEL = {
    "relative": "relative (T5 bias, band + far)", "k_bias_d16": "k_bias_d16 (K bias of dimension 16)",
    "value_bias_fixed": "value_bias_fixed (v^s = m v')", "sigmoid_logT": "sigmoid_logT (b = −log T)",
    "kernel_elu1_max_abs": "kernel_elu1_max_abs (normaliser max(abs(sum), 1))", "head_sum": "head_sum (sum of heads)",
    "moba_sink_token": "moba_sink_token (flex, sink key joined by LSE)", "dsa": "dsa, Triton indexer",
    "dsa_torch_indexer": "dsa, PyTorch indexer",
}
SPARSE = {"local_global", "strided", "moba_64", "moba_128", "moba_gated", "nsa_128", "moba_sink_token", "dsa",
          "dsa_torch_indexer"}


def step_rows(folder):
    """Every current step row of benchmarks/results/train_step/ and sparse/, host by host, in file order."""
    rows = []
    for path in (folder / "train_step" / "variants_h200.jsonl", folder / "sparse" / "train_step_h200.jsonl",
                 folder / "train_step" / "flex_variants_h200.jsonl", folder / "train_step" / "field_values_h200.jsonl"):
        for r in jl(path):
            r = dict(r, _file=path.name)
            if (host(r), r.get("process"), r["variant"]) in SUPERSEDED or "note" in r or "flop_count" in r:
                continue  # a discarded re-time, and the sum of heads under the old FLOP count (notes below)
            if r["variant"] == "dsa" and host(r) in ("H1", "H2", "H3", "H4"):
                continue  # DSA through FlexAttention, removed (§3b)
            if r["variant"] == "dsa" and host(r) == "H5":
                r = dict(r, variant="dsa_torch_indexer")  # before the Triton indexer existed
            rows.append(r)
    return rows


HEAD = ["variant", "GPU", "micro-batch", "tokens/s", "TFLOP/s", "MFU", "MFU / softmax MFU",
        "tokens/s / softmax tokens/s", "peak GB", "compile s"]


def uses(rows, soft, host_a, sparse):
    return any((x["variant"] in SPARSE) == sparse and x["variant"] != "softmax" and softmax_of(rows, x, host_a) is soft
               for x in rows)


def step_table_rows(folder, sparse):
    rows = step_rows(folder)
    host_a = next(r for r in rows if r["variant"] == "softmax" and r["host"] == "A" and r["vocab"] == 8192)
    picked = [r for r in rows if (r["variant"] in SPARSE) == sparse and r["variant"] != "softmax"
              or r["variant"] == "softmax" and (r.get("vocab") != 8192 and not sparse or uses(rows, r, host_a, sparse))]
    out = []
    for r in picked:
        own = softmax_of(rows, r, host_a)
        name = STEP_LABEL.get(r["variant"], r["variant"]) + ("" if r.get("vocab", 8192) == 8192 else f", vocab {r['vocab']}")
        where = "H200" if r["_file"].endswith("_h200.jsonl") else "H100"  # each ratio is to its own process's softmax
        if "error" in r:
            out.append([name, where, "", "failed to compile", "", "", "", "", "", ""])
            continue
        out.append([name, where, r["micro_batch"], f"{r['tokens_per_s']:,}", r["tflops"], pct(mfu(r)),
                    pct(mfu(r) / mfu(own)), pct(r["tokens_per_s"] / own["tokens_per_s"]), r["peak_mem_gb"],
                    r["warmup_s"]])
    return out


@table("train_step", "BENCHMARKS.md", BENCH)
def train_step(folder):
    notes = []
    fv = jl(folder / "train_step" / "field_values_h200.jsonl")
    old = next(r for r in fv if "flop_count" in r)
    soft = next(r for r in fv if r["variant"] == "softmax" and (r["host"], r["process"]) == (old["host"], old["process"]))
    notes.append(f"head_sum under the old FLOP count ({old['flop_count']}): {old['tokens_per_s']:,} tokens/s, "
                 f"MFU {pct(mfu(old))}, {pct(mfu(old) / mfu(soft))} of its softmax row ({old['host']} {old['process']})")
    for r in fv:
        if "note" in r:
            notes.append(f"discarded: {r['variant']} in {r['host']} {r['process']}: {r['note']}")
    return md(HEAD, step_table_rows(folder, sparse=False)), notes


@table("sparse_train_step", "BENCHMARKS.md", BENCH)
def sparse_train_step(folder):
    return md(HEAD, step_table_rows(folder, sparse=True)), []


@table("sparse_attention", "BENCHMARKS.md", BENCH / "sparse")
def sparse_attention(folder):
    rows = [[r["T"], r["batch"], r["block"], f"{r['topk']} / {r['blocks']}", pct(r["causal_block_density"]),
             r["sdpa_ms"], r["moba_flex_ms"], f"{r['moba_speedup']}x"] for r in jl(folder / "attention_h200.jsonl")]
    return md(["T", "batch", "block", "top-k / blocks", "causal-block density", "SDPA (flash) ms", "MoBA (flex) ms",
               "MoBA speed-up"], rows), []


@table("sparse_T16384", "BENCHMARKS.md", BENCH / "sparse")
def sparse_t16384(folder):
    label = {"softmax": "softmax (SDPA flash)", "moba_16k": "moba_16k (top 16 of 128 blocks, flex)"}
    rows = sorted(jl(folder / "train_step_T16384_h200.jsonl"), key=lambda r: r["variant"] != "softmax")
    soft = rows[0]
    notes = [f"moba_16k / softmax tokens/s: {rows[1]['tokens_per_s'] / soft['tokens_per_s']:.2f}x"]
    return md(["variant", "step ms", "tokens/s", "compile s"],
              [[label[r["variant"]], r["step_ms"], f"{r['tokens_per_s']:,}", r["warmup_s"]] for r in rows]), notes


# DSA's selection is a top-k over relu scores, many of them exactly 0 at initialisation: the GPU and the CPU break
# those ties differently, so DSA's GPU rows differ from the CPU's dense path by design (see BENCHMARKS.md)
SELECTION_DIFFERS = {"dsa", "dsa_torch_indexer"}


@table("gpu_checks", "BENCHMARKS.md", BENCH / "gpu_checks")
def gpu_checks(folder):
    """Every catalogue entry, compiled afresh per check (dynamo reset), GPU fast path against the CPU dense path."""
    rows = []
    for r in sorted(jl(folder / "compiled_catalogue_h200.jsonl"), key=lambda r: r["check"]):
        if r["check"] == "dsa_indexer_kernel":
            diffs = [f"scores {r['max_rel_score_diff']:.1e} (relative)", f"top-256 {r['same_topk_share']:.2%} the same"]
        else:
            diffs = [f"{r['max_abs_logit_diff']:.1e}", f"{r['max_rel_grad_diff']:.1e}"]
        rows.append([r["check"], *diffs, r["ok"]])
    others = [r for r in jl(folder / "compiled_catalogue_h200.jsonl") if "max_abs_logit_diff" in r
              and r["check"] not in SELECTION_DIFFERS]
    notes = [f"{len(rows)} checks, {sum(r[-1] is True for r in rows)} ok",
             f"largest logit diff where both devices select the same tokens {max(r['max_abs_logit_diff'] for r in others):.1e}, "
             f"gradient {max(r['max_rel_grad_diff'] for r in others):.1e}"]
    return md(["check", "max abs logit diff", "max rel grad diff", "ok"], rows), notes


@table("dsa_indexers", "BENCHMARKS.md", EXP / "dsa")
def dsa_indexers(folder):
    """Val loss of quick-60m with DSA through the Triton indexer and through the PyTorch one (same seed and batches)."""
    names = ("triton_indexer", "rope_sdpa") if folder == EXP / "dsa" else ("dsa_triton_indexer", "dsa_torch_indexer")
    kernel, torch_ = (by_step(jl(folder / f"{n}_metrics.jsonl"), "val_loss") for n in names)
    rows = [[k, f"{kernel[k]['val_loss']:.3f}", f2(torch_.get(k, {}).get("val_loss"), 3)] for k in sorted(kernel)]
    m = jl(folder / f"{names[0]}_metrics.jsonl")
    notes = [f"Triton indexer while training: median {round(statistics.median(r['tokens_per_s'] for r in m if r['step'] > 20)):,} "
             f"tokens/s (steps after 20)"]
    return md(["step", "val loss, Triton indexer", "val loss, PyTorch indexer"], rows), notes


# ---------------------------------------------------------------- BENCHMARKS.md §4: training runs

@table("ddp_same_batches", "BENCHMARKS.md", EXP / "ddp")
def ddp_same_batches(folder):
    one, two = (jl(folder / f"same_batches_{n}_metrics.jsonl") for n in ("single", "ddp"))
    rows = [[a["step"], f"{a['val_loss']:.3f}", f"{b['val_loss']:.3f}", f"{b['val_loss'] - a['val_loss']:+.3f}"]
            for a, b in zip([r for r in one if "val_loss" in r], [r for r in two if "val_loss" in r])]
    notes = [f"steady 2 GPUs / 1 GPU at step {two[-1]['step']}: {two[-1]['tokens_per_s'] / one[-1]['tokens_per_s']:.3f}x "
             f"({two[-1]['tokens_per_s']:,} / {one[-1]['tokens_per_s']:,}); with evaluation every 100 steps and the sink "
             f"measurements: {two[-1]['tokens_per_s_overall'] / one[-1]['tokens_per_s_overall']:.3f}x"]
    return md(["step", "1 GPU val loss", "2 GPUs (DDP) val loss", "difference"], rows), notes


DDP_GRAPH = [("1", "micro32_single", "1 GPU, micro-batch 32"), ("1", "micro16x2_single", "1 GPU, micro-batch 16 × 2"),
             ("1", "micro16_ddp", "DDP, per-bucket graphs (`split`)"), ("2", "whole_graph_single", "1 GPU, micro-batch 32"),
             ("2", "whole_graph_ddp", "DDP, one graph (`whole`)")]


@table("ddp_graph", "BENCHMARKS.md", EXP / "ddp")
def ddp_graph(folder):
    rows, base = [], {}
    for host, name, label in DDP_GRAPH:
        m = jl(folder / f"{name}_metrics.jsonl")
        steady, overall = steady_median(m), m[-1]["tokens_per_s_overall"]
        base.setdefault(host, (steady, overall))
        val = " / ".join(f"{r['val_loss']:.3f}" for r in m if "val_loss" in r)
        rows.append([host, label, f"{round(steady):,}", f"{steady / base[host][0]:.2f}", f"{overall:,}",
                     f"{overall / base[host][1]:.2f}", val])
    return md(["machine", "run", "steady tokens/s", "ratio", "incl. eval + measurement", "ratio", "val loss 200 / 400"],
              rows), []


# the overall rate of these runs counts a stretch where another job shared their GPUs
SHARED_GPUS = {"sigmoid_5000_seed1", "sigmoid_5000_seed3"}
RUNS_5000 = [("softmax_5000", "softmax, micro-batch 16"), ("sigmoid_5000_seed0", "sigmoid seed 0, micro-batch 8"),
             ("sigmoid_5000_seed1", "sigmoid seed 1 (probe of 256 windows)"),
             ("sigmoid_5000_seed2", "sigmoid seed 2 (probe of 256 windows)"),
             ("sigmoid_5000_seed3", "sigmoid seed 3 (probe of 256 windows)")]


@table("runs_5000", "BENCHMARKS.md", EXP / "emergence")
def runs_5000(folder):
    rows = []
    for name, label in RUNS_5000:
        r = jl(folder / f"{name}_metrics.jsonl")[-1]
        shared = name in SHARED_GPUS
        rows.append([label, f"{r['tokens_per_s']:,}", pct(mfu(r)),
                     "another job shared its GPUs for a while" if shared else f"{r['tokens_per_s_overall']:,}",
                     "" if shared else pct(r["tokens_per_s_overall"] / r["tokens_per_s"])])
    return md(["run", "steady tokens/s at step 5000", "MFU (of 2 GPUs)", "overall tokens/s", "overall / steady"], rows), []


@table("fsdp_paper1b", "BENCHMARKS.md", EXP / "fsdp")
def fsdp_paper1b(folder):
    rows = [[r["step"], f"{r['loss']:.3f}", f"{r['tokens_per_s']:,}", pct(mfu(r)), f2(r.get("val_loss"), 3),
             f2(r.get("sink_1"))] for r in jl(folder / "paper1b_metrics.jsonl") if r["step"] >= 5]
    return md(["step", "loss", "tokens/s", "MFU (of 2 GPUs)", "val loss", "Sink_1 %"], rows), []


@table("fsdp_resume", "BENCHMARKS.md", EXP / "fsdp")
def fsdp_resume(folder):
    killed = jl(folder / "sigkill_killed_metrics.jsonl")
    after = jl(folder / "sigkill_killed_then_resumed_metrics.jsonl")[len(killed):]
    a, b = {r["step"]: r["loss"] for r in killed}, {r["step"]: r["loss"] for r in after}
    both = sorted(set(a) & set(b))
    rows = [[k, a[k], b[k], f"{b[k] - a[k]:+.5f}"] for k in both]
    ref = jl(folder / "sigkill_not_killed_metrics.jsonl")
    last = ref[-1]["step"]
    notes = [f"killed after step {max(a)}, resumed from step {min(b) - 1}: steps {both[0]}-{both[-1]}, largest loss "
             f"difference {max(abs(a[k] - b[k]) for k in both):.1e}, {sum(a[k] == b[k] for k in both)} of {len(both)} equal",
             f"the uninterrupted run at step {last}: loss {ref[-1]['loss']}; the resumed run: {b.get(last)}"]
    return md(["step", "loss, killed run", "loss, resumed run", "difference"], rows), notes


# ---------------------------------------------------------------- EXPERIMENTS.md §1, §2: emergence, sigmoid

def seeds(folder):
    """The sigmoid runs' measurement rows by seed (the seeds whose file is there)."""
    return {s: by_step(jl(p)) for s in range(4) if (p := folder / f"sigmoid_5000_seed{s}_metrics.jsonl").exists()}


@table("emergence_5000", "EXPERIMENTS.md", EXP / "emergence")
def emergence_5000(folder):
    soft, sig = by_step(jl(folder / "softmax_5000_metrics.jsonl")), seeds(folder)
    rows = []
    for step in sorted(k for k in soft if k % 500 == 0):
        a, b = soft[step], sig.get(0, {}).get(step, {})
        rows.append([step, f2(a["sink_1"]), f2(a.get("val_loss")), f2(a["massive_activation"]),
                     *(f2(sig.get(s, {}).get(step, {}).get("sink_1")) for s in range(4)),
                     f2(b.get("sink_1_share_and_weight")), f2(b.get("massive_activation")), f2(b.get("val_loss"))])
    return md(["step", "softmax Sink_1 %", "softmax val loss", "softmax ||h_1||/med", "sigmoid seed 0 Sink_1 % (proxy)",
               "seed 1", "seed 2", "seed 3", "seed 0: Sink_1 of heads that also weigh token 1 > eps, %",
               "seed 0 ||h_1||/med", "seed 0 val loss"], rows), []


@table("sigmoid_seeds", "EXPERIMENTS.md", EXP / "emergence")
def sigmoid_seeds(folder):
    rows, ends = [], []
    for s, m in seeds(folder).items():
        late = [m[k]["sink_1"] for k in sorted(m) if k >= 4000]
        n = json.loads((folder / f"sigmoid_5000_seed{s}_config.json").read_text())["train"]["measure_n"]
        ends.append(m[5000]["sink_1"])
        rows.append([s, n, f2(m[5000]["sink_1"]), f2(sum(late) / len(late)), f"{sum(v > 1 for v in late)} of {len(late)}",
                     f"{m[5000]['val_loss']:.3f}"])
    soft = by_step(jl(folder / "softmax_5000_metrics.jsonl"))[5000]["sink_1"]
    notes = [f"step 5000 over {len(ends)} seeds: mean {sum(ends) / len(ends):.2f} %, softmax {soft:.2f} %"]
    return md(["sigmoid seed", "probe windows", "Sink_1 % at step 5000", "mean over steps 4000–5000",
               "readings > 1 % in steps 4000–5000", "val loss at 5000"], rows), notes


@table("emergence_short", "EXPERIMENTS.md", EXP / "emergence")
def emergence_short(folder):
    runs = {n: by_step(jl(folder / f"{n}_metrics.jsonl")) for n in ("softmax_2400", "sigmoid_1300", "softmax_ddp_1000")}
    rows = []
    for step in sorted(runs["softmax_2400"]):
        s, g, d = (runs[n].get(step, {}) for n in runs)
        rows.append([step, f2(s["sink_1"]), f2(s["val_loss"]), f2(s["massive_activation"]), f2(g.get("sink_1")),
                     f2(g.get("val_loss")), f2(g.get("massive_activation")), f2(d.get("sink_1")), f2(d.get("val_loss"))])
    notes = []
    for n in runs:
        last = jl(folder / f"{n}_metrics.jsonl")[-1]
        notes.append(f"{n} at step {last['step']}: {last['tokens_per_s']:,} tokens/s ({pct(mfu(last))} MFU); with "
                     f"evaluation and the sink measurement {last['tokens_per_s_overall']:,} ({pct(mfu(last, 'mfu_overall'))})")
    return md(["step", "softmax Sink_1 %", "softmax val loss", "softmax ||h_1||/med", "sigmoid (no norm) Sink_1 % (proxy)",
               "sigmoid val loss", "sigmoid ||h_1||/med", "2-GPU softmax Sink_1 %", "2-GPU val loss"], rows), notes


@table("sigmoid_heads_1000", "EXPERIMENTS.md", EXP / "sigmoid_proxy")
def sigmoid_heads_1000(folder):
    h = json.loads((folder / "sigmoid_1000_heads.json").read_text())
    heads = h["heads"]
    top = sorted(heads, key=lambda x: (-x["sink_share_pct"], x["layer"], x["head"]))[:8]
    rows = [[x["layer"], x["head"], f"{x['sink_share_pct']:.1f}", f"{x['mean_alpha_1']:.3f}",
             f"{x['row_mass']:.4f}" if x["row_mass"] < 0.01 else f"{x['row_mass']:.3f}", f"{x['mass_on_token_1']:.4f}"]
            for x in top]
    mass = [x["row_mass"] for x in heads]
    passing = [x for x in heads if x["sink_share_pct"] > 0]
    trainer = by_step(jl(folder / "sigmoid_1000_metrics.jsonl"))
    notes = [f"all {len(heads)} heads: row mass {min(mass)} to {max(mass):.1f}, median {statistics.median(mass):.2f}; "
             f"Sink_1 of the checkpoint {h['sink_1_pct']:.2f} %, the trainer's at step {max(trainer)} "
             f"{trainer[max(trainer)]['sink_1']:.2f} %",
             f"the 8 heads above carry {sum(x['sink_share_pct'] for x in top) / len(heads):.2f} points; {len(passing)} heads "
             f"pass eps in some sample, none puts more than {max(x['mass_on_token_1'] for x in passing):.4f} on token 1"]
    for p in sorted(folder.glob("*_5000_*heads_*.json")):
        x = json.loads(p.read_text())
        quiet = [y for y in x["heads"] if y["sink_share_pct"] > 0]
        notes.append(f"{p.stem}: Sink_1 {x['sink_1_pct']:.2f} % on {x['n']} samples; {len(quiet)} heads pass eps in some "
                     f"sample, at most {max(y['sink_share_pct'] for y in quiet):.1f} % of them, weight on token 1 at most "
                     f"{max(y['mass_on_token_1'] for y in quiet):.4f}, row masses "
                     f"{min(y['row_mass'] for y in quiet):.3f}-{max(y['row_mass'] for y in quiet):.3f}")
    return md(["layer", "head", "% of samples with alpha_1 > 0.3", "mean proxy alpha_1", "row mass Σ_j σ(q·k_j)",
               "weight on token 1"], rows), notes


@table("sigmoid_bias", "EXPERIMENTS.md", EXP / "sigmoid_proxy")
def sigmoid_bias(folder):
    plain, bias = (by_step(jl(folder / f"{n}_metrics.jsonl")) for n in ("sigmoid_2400", "sigmoid_bias_logT"))
    rows = []
    for step in sorted(plain):
        a, b = plain[step], bias.get(step, {})
        rows.append([step, f2(a["sink_1"]), f2(a["mean_alpha_1"], 3), f2(a["massive_activation"]), f2(a["val_loss"]),
                     f2(b.get("sink_1")), f2(b.get("mean_alpha_1"), 3), f2(b.get("massive_activation")),
                     f2(b.get("val_loss"))])
    return md(["step", "no bias: Sink_1 %", "mean alpha_1", "||h_1||/med", "val loss", "b = −log T: Sink_1 %",
               "mean alpha_1", "||h_1||/med", "val loss"], rows), []


# ---------------------------------------------------------------- EXPERIMENTS.md §3: the faithful protocol

def first_step(m, level):
    return next((k for k in sorted(m) if m[k]["sink_1"] >= level), None)


FAITHFUL = [("quick-60m (2 H200s, same global batch; `emergence/softmax_5000`)", EXP / "emergence" / "softmax_5000", "4e-4"),
            ("calibration", "lr8e-4_2000_seed0", "8e-4"), ("calibration", "lr1.6e-3_2000_seed0", "1.6e-3"),
            ("faithful-60m, seed 0", "lr8e-4_4800_seed0", "8e-4"), ("faithful-60m, seed 1", "lr8e-4_4800_seed1", "8e-4")]
PAPER_ROWS = [["paper, default (20k steps of 1M tokens)", "4e-4", "", "", "18.18 (20k)", "the sink appears between 1k and 2k",
               "3.73 (the Pile)"], ["paper, LR 8e-4", "8e-4", "", "", "23.44 (10k)", "", ""]]


@table("faithful60m", "EXPERIMENTS.md", EXP / "faithful60m")
def faithful60m(folder):
    rows = []
    for label, name, lr in FAITHFUL:
        path = name.parent / f"{name.name}_metrics.jsonl" if isinstance(name, Path) else folder / f"{name}_metrics.jsonl"
        if not path.exists():
            continue
        rs = jl(path)
        m, v = by_step(rs), by_step(rs, "val_loss")
        end = max(m)
        val = f"{v[2000]['val_loss']:.3f}" + ("" if end == 2000 else f" / {v[end]['val_loss']:.3f}")
        rows.append([label, lr, f2(m[1000]["sink_1"]), f2(m[2000]["sink_1"]), f"{m[end]['sink_1']:.2f} ({end})",
                     f"{first_step(m, 1)} / {first_step(m, 5)}", val])
    return md(["run", "LR", "Sink_1 % at step 1000", "at 2000", "at the end (step)", "first step ≥ 1 % / ≥ 5 %",
               "val loss at 2000 / end"], rows + PAPER_ROWS), []


CONTESTED = [("k_bias", "attention_bias", "K bias (v = 0)"), ("kv_bias", "attention_bias", "KV bias"),
             ("pos_nope", "positional", "NoPE"), ("pos_alibi", "positional", "ALiBi")]


def names_in(claim):
    arg = next(v for k, v in claim.items() if k != "text")
    return set(arg) if isinstance(arg, list) else {arg}


def contested_claims(folder):
    """Each contested run against both baseline seeds at the run's last probed step (the schedule is constant after
    warm-up, so a shorter run is the protocol's prefix), judged by the scorecard's own claims of its suite."""
    from sinklab.experiments import load_suite
    from sinklab.experiments.scorecard import probe_fields
    from sinklab.experiments.verdicts import judge_over_seeds
    seeds = [jl(folder / f"lr8e-4_4800_seed{s}_metrics.jsonl") for s in (0, 1)]
    for change, suite_name, label in CONTESTED:
        path = folder / f"contested_{change}_metrics.jsonl"
        if not path.exists():
            continue
        rs = jl(path)
        probes, evals = by_step(rs), by_step(rs, "val_loss")
        step, val_step = max(probes), max(evals)
        run = probe_fields(probes[step])
        bases = [probe_fields(by_step(b)[step]) for b in seeds]
        seed_rows = {"baseline": dict(enumerate(bases)), change: {0: run}}
        val = [evals[val_step]["val_loss"], *(by_step(b, "val_loss")[val_step]["val_loss"] for b in seeds), val_step]
        suite = load_suite(suite_name)
        paper = next(c["paper"] for c in suite["changes"] if c["name"] == change)
        for claim in (c for c in suite["claims"] if change in names_in(c)):
            yield {"label": label, "step": step, "run": run, "baselines": [b["sink_1"] for b in bases],
                   "paper": paper, "claim": claim["text"], "val": val,
                   "verdict": judge_over_seeds(claim, seed_rows, "baseline", min_seeds=1,
                                               min_reference_seeds=2).verdict}


@table("faithful60m_contested", "EXPERIMENTS.md", EXP / "faithful60m")
def faithful60m_contested(folder):
    rows = []
    for c in contested_claims(folder):
        r, p = c["run"], c["paper"]
        star = f2(r["sink_star"]) if r["sink_star"] is not None else ""
        paper = f"Sink_1 {p['sink_1']}" + (f", Sink* {p['sink_star']}" if "sink_star" in p else "")
        val = "{:.3f} vs {:.3f} / {:.3f} ({})".format(*c["val"])
        rows.append([c["label"], c["step"], f2(r["sink_1"]), star, " / ".join(f2(b) for b in c["baselines"]), val,
                     paper, c["claim"], c["verdict"]])
    return md(["change", "step", "Sink_1 %", "Sink* % (paper's convention)", "baseline Sink_1 % at that step, seed 0 / 1",
               "val loss vs baseline seed 0 / 1 (step)", "paper", "claim", "verdict"], rows), []


# ---------------------------------------------------------------- EXPERIMENTS.md §4, §5: the suites at quick-60m

SWEEP_SET = {"train.steps": 1000, "train.measure_every": 200, "train.eval_every": 200, "train.ckpt_every": 200}
SUITES = ["weight_decay", "positional", "attention_bias", "attention_op", "fixed_token", "sliding_window"]


def scorecard_rows(folder, names):
    """run_row and the claims of `sinklab scorecard`, read from the stored runs without writing its report."""
    from sinklab.experiments import load_suite, plan_runs
    from sinklab.experiments.scorecard import judge, reference_run, run_row
    rows, claims = {}, []
    for name in names:
        suite = load_suite(name)
        rs = {r.change: run_row(r, "quick-60m") for r in plan_runs([name], "quick-60m", folder, data="", extra=SWEEP_SET)}
        rows[name] = rs
        claims += [[name, c["text"], *judge(c, rs, reference_run(suite))] for c in suite.get("claims", [])]
    return rows, claims


@table("suites", "EXPERIMENTS.md", EXP / "sweeps")
def suites(folder):
    from sinklab.experiments.scorecard import sink_star_text
    rows = scorecard_rows(folder, SUITES)[0]
    f = lambda v: "" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))  # noqa: E731
    out = []
    for name, rs in rows.items():
        for r in rs.values():
            paper = (f"{r['paper_metric']} {r['paper']}" if r["paper"] is not None else "") + \
                    (f", Sink* {r['paper_sink_star']}" if r["paper_sink_star"] is not None else "")
            out.append([name, r["change"], f(r["step"]), f(r["sink_1"]), sink_star_text(r), f(r["largest_sink_position"]),
                        f(r["val_loss"]), paper, r["paper_source"]])
    return md(["suite", "change", "step", "our Sink_1 %", "our Sink* %", "largest at", "val loss", "paper", "source"], out), []


@table("suite_claims", "EXPERIMENTS.md", EXP / "sweeps")
def suite_claims(folder):
    return md(["suite", "claim", "verdict", "evidence"], scorecard_rows(folder, SUITES)[1]), []


SPARSE_ROWS = [("baseline", "dense"), ("sparse_local", "local window 256"), ("sparse_local_global", "local 256 + 1 global token"),
               ("moba", "MoBA"), ("moba_forced_first", "MoBA + block 0 forced"), ("moba_gated", "MoBA + elementwise gate"),
               ("nsa", "NSA"), ("nsa_forced_first", "NSA + block 0 forced"), ("sparse_strided", "strided (stride 128)"),
               ("moba_sink_token", "MoBA + sink token"), ("moba_sigmoid", "MoBA + sigmoid, no normalisation (proxy)"),
               ("dsa", "DSA top-256 tokens")]


def branches(b):
    return ", ".join(f"{k} {v:.2f}" if v < 10 else f"{k} {v:.1f}" for k, v in (b or {}).items())


@table("sparse_quick60m", "EXPERIMENTS.md", EXP / "sweeps")
def sparse_quick60m(folder):
    from sinklab.experiments.scorecard import sink_star_text
    rows, claims = scorecard_rows(folder, ["sparse"])
    rs = rows["sparse"]
    out = []
    for change, label in SPARSE_ROWS:
        r = rs[change]
        last = r["_history"][-1]
        sink = f2(r["sink_1"]) + (f"; Sink* {sink_star_text(r)}" if r["sink_star"] is not None else "")
        out.append([label, f"{r['val_loss']:.3f}", sink, f"{r['largest_sink_position']} ({r['largest_sink']:.2f})",
                    f2(r["massive_activation"]), f"{r['tokens_per_s']:,}", branches(last.get("sink_by_branch"))])
    notes = [f"claim: {c[1]}: {c[2]} ({c[3]})" for c in claims]
    return md(["pattern", "val loss", "Sink_1 %", "largest Sink at (%)", "massive activation (×median)", "steady tokens/s",
               "Sink_1 by NSA branch %"], out), notes


LONG = [("dense", "dense", "long_probe/dense"), ("MoBA", "moba", "long_probe/moba"), ("NSA", "nsa", "long_probe/nsa"),
        ("strided", "strided", "sweeps/quick-60m/sparse_strided-2fb55df085/")]


@table("long_probe_T1024", "EXPERIMENTS.md", EXP)
def long_probe_t1024(folder):
    out = []
    for label, name, recorded in LONG:
        path = folder / (f"{name}_metrics.jsonl" if folder != EXP else
                         (recorded + "metrics.jsonl" if recorded.endswith("/") else recorded + "_metrics.jsonl"))
        rs = jl(path)
        r, v = by_step(rs)[1000], by_step(rs, "val_loss")[1000]
        largest = f"{r['largest_sink_long']:.2f}" + (" (token 1)" if label == "dense" else "")
        out.append([label, f"{v['val_loss']:.3f}", f2(r["sink_1"]), f2(r["sink_1_long"]), largest,
                    "" if label == "dense" else f2(r["sink_1_mask_aware_long"]), branches(r.get("sink_by_branch_long"))])
    return md(["pattern", "val loss", "Sink_1 % at T = 64", "Sink_1 % at T = 1024", "largest Sink_k at T = 1024",
               "mask-aware Sink_1 at T = 1024", "by NSA branch at T = 1024"], out), []


@table("long_probe_mean_alpha", "EXPERIMENTS.md", EXP / "long_probe")
def long_probe_mean_alpha(folder):
    names = ["dense", "moba", "nsa", "window_256"]
    runs = {n: jl(folder / f"mean_alpha_{n}_metrics.jsonl") for n in names}
    ms = {n: by_step(rs, "mean_alpha_1_long") for n, rs in runs.items()}
    rows = [[step, *(f"{ms[n][step]['mean_alpha_1_long']:.5f}" for n in names)] for step in sorted(ms["dense"])]
    last = max(ms["dense"])
    rows.append([f"val loss at {last}", *(f"{by_step(runs[n], 'val_loss')[last]['val_loss']:.3f}" for n in names)])
    rows.append([f"Sink_1 % at T = 64, step {last}", *(f2(ms[n][last]["sink_1"]) for n in names)])
    first = min(ms["dense"])
    notes = [f"growth from step {first} to {last}: " + ", ".join(
        f"{n} {ms[n][last]['mean_alpha_1_long'] / ms[n][first]['mean_alpha_1_long']:.1f}x" for n in names),
        f"uniform causal weights at T = 1024: H_1024 / 1024 = {sum(1 / i for i in range(1, 1025)) / 1024:.5f}"]
    return md(["step", "dense", "MoBA", "NSA", "window 256"], rows), notes


# ---------------------------------------------------------------- EXPERIMENTS.md §7: a sink on a CPU

@table("cpu_emergence", "EXPERIMENTS.md", EXP / "cpu_emergence")
def cpu_emergence(folder):
    m = by_step(jl(folder / "metrics.jsonl"))
    steps = sorted(m)
    return md(["step", *map(str, steps)], [["Sink_1 %", *(f2(m[k]["sink_1"]) for k in steps)],
                                            ["position of the largest Sink", *(m[k]["largest_sink_position"] for k in steps)],
                                            ["val loss", *(f2(m[k]["val_loss"]) for k in steps)]]), []


@table("cpu_emergence_seeds", "EXPERIMENTS.md", EXP / "cpu_emergence")
def cpu_emergence_seeds(folder):
    ms = [by_step(jl(folder / f"other_stdlib_seed{s}_metrics.jsonl")) for s in (0, 1)]
    steps = sorted(ms[0])
    return md(["step", *map(str, steps)], [[f"seed {s}: Sink_1 % (largest at)",
                                             *(f"{m[k]['sink_1']:.2f} ({m[k]['largest_sink_position']})" for k in steps)]
                                            for s, m in enumerate(ms)]), []


# ---------------------------------------------------------------- EXPERIMENTS.md §8: streaming

@table("stream_smollm2", "EXPERIMENTS.md", EXP / "stream_smollm2")
def stream_smollm2(folder):
    label = {"full": "full cache (fits: 1,000 < 8,192 context)", "window": "window only (256)",
             "sink": "4 sinks + 252 window", "recompute": "sliding window with recomputation (256)"}
    d = json.loads((folder / "stream.json").read_text())
    rows = [[label[p["policy"]], f"{p['ppl_past_cache']:.2f}", f"{p['ppl_on_recompute_positions']:.2f}"] for p in d["policies"]]
    return md(["policy", "perplexity past the first 256 tokens", "perplexity on the recompute positions"], rows), []


@table("keep_sink_tokens", "EXPERIMENTS.md", EXP / "keep_sink_tokens")
def keep_sink_tokens(folder):
    """Per cache size: the window, the plain sink cache and the one that keeps the later sink tokens."""
    label = {"window": "window only", "sink": "4 sinks + window", "keep": "4 sinks + {slots} kept + window"}
    rows = []
    for run in sorted(folder.glob("cache*/stream.json"), key=lambda p: int(p.parent.name[5:])):
        d = json.loads(run.read_text())
        slots = (d.get("keep_sink_tokens") or {}).get("slots")
        for p in d["policies"]:
            rows.append([d["cache_size"], label[p["policy"]].format(slots=slots), f"{p['ppl_all']:.3f}",
                         f"{p['ppl_past_cache']:.3f}"])
    return md(["cache", "policy", "perplexity, all tokens", "perplexity past the first cache"], rows), []


# ---------------------------------------------------------------- the command line

def doc_tables(doc):
    """{name: table lines} of the tables marked `<!-- tables.py NAME -->` in a doc."""
    lines, found = (ROOT / doc).read_text().splitlines(), {}
    for i, line in enumerate(lines):
        if line.startswith("<!-- tables.py "):
            name = line.split()[2]
            body = []
            for x in lines[i + 1:]:
                if not x.startswith("|"):
                    break
                body.append(x)
            found[name] = body
    return found


def write() -> None:
    """Replace every marked table in the docs by its rebuild."""
    for doc in ("BENCHMARKS.md", "EXPERIMENTS.md"):
        lines, out, i = (ROOT / doc).read_text().splitlines(), [], 0
        while i < len(lines):
            out.append(lines[i])
            if lines[i].startswith("<!-- tables.py "):
                _, folder, fn = TABLES[lines[i].split()[2]]
                out += fn(folder)[0]
                i += 1
                while i < len(lines) and lines[i].startswith("|"):
                    i += 1
                continue
            i += 1
        (ROOT / doc).write_text("\n".join(out) + "\n")


def check() -> int:
    bad = 0
    marked = {}
    for doc in ("BENCHMARKS.md", "EXPERIMENTS.md"):
        for name, body in doc_tables(doc).items():
            marked[name] = doc
            if name not in TABLES:
                print(f"{doc}: unknown table {name}")
                bad += 1
                continue
            doc_, folder, fn = TABLES[name]
            want = fn(folder)[0]
            if body != want:
                bad += 1
                print(f"{doc}: table {name} differs from its rebuild:")
                for a, b in zip(body + [""] * len(want), want + [""] * len(body)):
                    if a != b:
                        print(f"  doc:     {a}\n  rebuilt: {b}")
    for name, (doc, _, _) in TABLES.items():
        if name not in marked:
            print(f"{doc}: no table marked {name}")
            bad += 1
    print(f"{len(marked)} tables checked, {bad} problems")
    return 1 if bad else 0


def fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*")
    ap.add_argument("--results", type=Path, help="read NAME's files from this folder (a scripts/gpu/*.sh $OUT)")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--write", action="store_true", help="replace the marked tables in the docs by their rebuilds")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    if a.write:
        write()
    if a.check or a.write:
        return check()
    if a.list:
        for name, (doc, folder, _) in TABLES.items():
            print(f"{name}: {doc}, from {folder.relative_to(ROOT)}")
        return 0
    for name in a.names or TABLES:
        if name not in TABLES:
            return fail(f"unknown table {name}; --list names them")
        doc, folder, fn = TABLES[name]
        try:
            lines, notes = fn(a.results or folder)
        except FileNotFoundError as e:
            return fail(f"table {name}: {e.filename} is missing (run its script, or pass --results the folder it wrote)")
        print(f"{name} ({doc}):", *lines, *notes, "", sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
