"""Redraw the EXPERIMENTS.md figures from the stored metrics (no GPU needed).
    python scripts/plot_experiments.py
"""
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sinklab.report.training import sink_and_loss_figure  # noqa: E402

root = Path(__file__).resolve().parents[1]
res = root / "experiments" / "results"


def rows(p):
    return [json.loads(line) for line in Path(p).read_text().splitlines() if line.strip()]


q = res / "emergence"
sink_and_loss_figure({"softmax (1 GPU)": rows(q / "softmax_2400_metrics.jsonl"),
                      "sigmoid, no normalisation": rows(q / "sigmoid_1300_metrics.jsonl"),
                      "softmax (2 GPUs, torchrun)": rows(q / "softmax_ddp_1000_metrics.jsonl")}, root / "docs" / "quick60m_emergence.png")
sink_and_loss_figure({"tiny, fixed first token": rows(res / "cpu_emergence" / "metrics.jsonl")},
                     root / "docs" / "cpu_emergence.png")
sw = res / "sweeps" / "quick-60m"
sparse = {"dense": "baseline", "local 256": "sparse_local", "local 256 + global 1": "sparse_local_global",
          "MoBA": "moba", "MoBA + block 0": "moba_forced_first", "MoBA + gate": "moba_gated",
          "NSA": "nsa", "NSA + block 0": "nsa_forced_first", "strided": "sparse_strided",
          "MoBA + sink token": "moba_sink_token", "MoBA + sigmoid": "moba_sigmoid", "DSA top-256": "dsa"}
sink_and_loss_figure({label: rows(next(sw.glob(f"{name}-*")) / "metrics.jsonl") for label, name in sparse.items()},
                     root / "docs" / "sparse_quick60m.png")

# the threshold-free mean alpha_1 at T = 1024, and where sigmoid's proxy Sink_1 comes from
long_probe, proxy = res / "long_probe", res / "sigmoid_proxy"
fig, ax = plt.subplots(figsize=(6, 4))
for label, name in (("dense", "dense"), ("MoBA", "moba"), ("NSA", "nsa"), ("window 256", "window_256")):
    pts = [(r["step"], r["mean_alpha_1_long"]) for r in rows(long_probe / f"mean_alpha_{name}_metrics.jsonl") if "mean_alpha_1_long" in r]
    ax.plot(*zip(*pts), marker="o", label=label)
T = 1024
ax.axhline(sum(1 / i for i in range(1, T + 1)) / T, color="grey", ls="--", label="uniform causal weights")
ax.set(xlabel="training step", ylabel="mean alpha_1 at T = 1024", title="Token 1's mean share at long context (quick-60m)")
ax.legend()
fig.tight_layout()
fig.savefig(root / "docs" / "long_probe_mean_alpha.png", dpi=120)

# per head: where the proxy Sink_1 comes from, after 1,000 steps and 5,000 steps (4 seeds)
tables = {"after 1,000 steps (seed 0)": json.loads((proxy / "sigmoid_1000_heads.json").read_text())["heads"],
          "after 5,000 steps (seeds 0-3)": [h for p in sorted(proxy.glob("sigmoid_5000_seed*_heads_windows.json"))
                                            for h in json.loads(p.read_text())["heads"]]}
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, (title, heads) in zip(axes, tables.items()):
    sc = ax.scatter([max(h["row_mass"], 1e-5) for h in heads], [h["mean_alpha_1"] for h in heads],
                    c=[h["sink_share_pct"] for h in heads], cmap="viridis", vmin=0, vmax=25, s=14)
    ax.axhline(0.3, color="grey", ls="--", label="eps = 0.3")
    ax.set(xscale="log", xlabel="row mass sum_j sigmoid(q.k_j), mean over rows", title=title)
    ax.legend()
axes[0].set_ylabel("mean proxy alpha_1")
fig.suptitle("Sigmoid without normalisation: each head's proxy alpha_1 against how much it attends at all", y=1.04)
fig.colorbar(sc, ax=axes, label="% of probe samples with alpha_1 > eps")
fig.savefig(root / "docs" / "sigmoid_heads.png", dpi=120, bbox_inches="tight")

# the preset's full 5,000 steps, softmax against sigmoid without normalisation (seeds as stored)
runs5 = {"softmax": rows(q / "softmax_5000_metrics.jsonl")}
runs5.update({f"sigmoid seed {s}": rows(q / f"sigmoid_5000_seed{s}_metrics.jsonl") for s in (0, 1, 2, 3)})
fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(14, 3.8))
for label, rs in runs5.items():
    m = [r for r in rs if "sink_1" in r]
    ax = a1 if label == "softmax" else a2
    line, = ax.plot([r["step"] for r in m], [r["sink_1"] for r in m], marker="o", ms=3, label=label)
    if label == "softmax":
        a2.plot([], [])  # keep the colours of the sigmoid runs the same in both panels
    v = [r for r in rs if "val_loss" in r]
    a3.plot([r["step"] for r in v], [r["val_loss"] for r in v], marker="s", ms=3, label=label)
a2.axhline(1.0, color="grey", ls="--", label="1 %")
a1.set(xlabel="step", ylabel="Sink_1 (%), eps = 0.3", title="softmax", ylim=(0, None))
a2.set(xlabel="step", ylabel="proxy Sink_1 (%), eps = 0.3", title="sigmoid, no normalisation", ylim=(0, None))
a3.set(xlabel="step", ylabel="validation loss", title="loss", ylim=(1.3, 4))
for a in (a1, a2, a3):
    a.legend(fontsize=8)
fig.tight_layout()
fig.savefig(root / "docs" / "quick60m_5000.png", dpi=120)
print("wrote docs/quick60m_emergence.png, docs/cpu_emergence.png, docs/sparse_quick60m.png, "
      f"docs/long_probe_mean_alpha.png, docs/sigmoid_heads.png, docs/quick60m_5000.png (uniform alpha_1 at T = {T}: "
      f"{sum(1 / i for i in range(1, T + 1)) / T:.5f})")
