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


q = res / "quick60m"
sink_and_loss_figure({"softmax (1 GPU)": rows(q / "softmax_metrics.jsonl"),
                      "sigmoid, no normalisation": rows(q / "sigmoid_metrics.jsonl"),
                      "softmax (2 GPUs, torchrun)": rows(q / "ddp_metrics.jsonl")}, root / "docs" / "quick60m_emergence.png")
sink_and_loss_figure({"tiny, fixed first token": rows(res / "cpu_fixed_first_token_metrics.jsonl")},
                     root / "docs" / "cpu_emergence.png")
sw = res / "sweeps" / "quick-60m"
sparse = {"dense": "baseline", "local 256": "sparse_local", "local 256 + global 1": "sparse_local_global",
          "MoBA": "moba", "MoBA + block 0": "moba_forced_first", "MoBA + gate": "moba_gated",
          "NSA": "nsa", "NSA + block 0": "nsa_forced_first", "strided": "sparse_strided",
          "MoBA + sink token": "moba_sink_token", "MoBA + sigmoid": "moba_sigmoid", "DSA top-256": "dsa"}
sink_and_loss_figure({label: rows(next(sw.glob(f"{name}-*")) / "metrics.jsonl") for label, name in sparse.items()},
                     root / "docs" / "sparse_quick60m.png")

# session 4: the threshold-free mean alpha_1 at T = 1024, and where sigmoid's proxy Sink_1 comes from
s4 = res / "s4"
fig, ax = plt.subplots(figsize=(6, 4))
for label, name in (("dense", "sparse_none"), ("MoBA", "sparse_moba"), ("NSA", "sparse_nsa"), ("window 256", "window_256")):
    pts = [(r["step"], r["mean_alpha_1_long"]) for r in rows(s4 / f"long_probe_{name}_metrics.jsonl") if "mean_alpha_1_long" in r]
    ax.plot(*zip(*pts), marker="o", label=label)
T = 1024
ax.axhline(sum(1 / i for i in range(1, T + 1)) / T, color="grey", ls="--", label="uniform causal weights")
ax.set(xlabel="training step", ylabel="mean alpha_1 at T = 1024", title="Token 1's mean share at long context (quick-60m)")
ax.legend()
fig.tight_layout()
fig.savefig(root / "docs" / "long_probe_mean_alpha.png", dpi=120)

heads = json.loads((s4 / "sigmoid_1000_heads.json").read_text())["heads"]
fig, ax = plt.subplots(figsize=(6, 4))
sc = ax.scatter([max(h["row_mass"], 1e-5) for h in heads], [h["mean_alpha_1"] for h in heads],
                c=[h["sink_share_pct"] for h in heads], cmap="viridis")
ax.axhline(0.3, color="grey", ls="--", label="eps = 0.3")
ax.set(xscale="log", xlabel="row mass: sum_j sigmoid(q.k_j), mean over queries",
       ylabel="mean proxy alpha_1", title="Sigmoid, no normalisation: 80 heads after 1,000 steps")
fig.colorbar(sc, label="% of probe samples with alpha_1 > eps")
ax.legend()
fig.tight_layout()
fig.savefig(root / "docs" / "sigmoid_heads.png", dpi=120)
print("wrote docs/quick60m_emergence.png, docs/cpu_emergence.png, docs/sparse_quick60m.png, "
      f"docs/long_probe_mean_alpha.png, docs/sigmoid_heads.png (uniform alpha_1 at T = {T}: "
      f"{sum(1 / i for i in range(1, T + 1)) / T:.5f})")
