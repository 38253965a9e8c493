"""The faithful-60m figures: Sink_1 and validation loss against step on one H200.
    python scripts/plot_faithful.py  ->  docs/faithful60m.png (the calibration: each LR, both seeds)
                                         docs/faithful60m_contested.png (K/KV bias, NoPE, ALiBi beside both seeds)"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from sinklab.report.training import sink_and_loss_figure  # noqa: E402
from sinklab.files import read_metrics  # noqa: E402

R = ROOT / "experiments" / "results"
F = R / "faithful60m"


def seed(s: int) -> Path:
    return F / f"lr8e-4_4800_seed{s}_metrics.jsonl"


FIGURES = {
    "faithful60m.png": {"LR 4e-4 (quick-60m)": R / "emergence" / "softmax_5000_metrics.jsonl",
                        **{f"LR 8e-4, seed {s} (faithful-60m)": seed(s) for s in (0, 1)},
                        "LR 1.6e-3": F / "lr1.6e-3_2000_seed0_metrics.jsonl"},
    "faithful60m_contested.png": {**{f"RoPE baseline, seed {s}": seed(s) for s in (0, 1)},
                                  **{label: F / f"contested_{name}_metrics.jsonl" for name, label in
                                     (("k_bias", "K bias (v = 0)"), ("kv_bias", "KV bias"), ("pos_nope", "NoPE"),
                                      ("pos_alibi", "ALiBi"))}},
}


if __name__ == "__main__":
    for name, runs in FIGURES.items():
        rows = {label: read_metrics(p)[0] for label, p in runs.items() if p.exists()}
        print(sink_and_loss_figure(rows, ROOT / "docs" / name))
