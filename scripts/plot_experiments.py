"""Redraw the EXPERIMENTS.md figures from the stored metrics (no GPU needed).
    python scripts/plot_experiments.py
"""
import json
from pathlib import Path

from sinklab.report.training import sink_and_loss_figure

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
          "NSA": "nsa", "NSA + block 0": "nsa_forced_first"}
sink_and_loss_figure({label: rows(next(sw.glob(f"{name}-*")) / "metrics.jsonl") for label, name in sparse.items()},
                     root / "docs" / "sparse_quick60m.png")
print("wrote docs/quick60m_emergence.png, docs/cpu_emergence.png, docs/sparse_quick60m.png")
