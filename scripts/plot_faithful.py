"""The faithful-60m calibration figure: Sink_1 and validation loss against step for each LR on one H200.
    python scripts/plot_faithful.py  ->  docs/faithful60m.png"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from sinklab.report.training import sink_and_loss_figure  # noqa: E402

R = ROOT / "experiments" / "results"
RUNS = {
    "LR 4e-4 (quick-60m)": R / "emergence" / "softmax_5000_metrics.jsonl",
    "LR 8e-4, seed 0 (faithful-60m)": R / "faithful60m" / "lr8e-4_4800_seed0_metrics.jsonl",
    "LR 8e-4, seed 1 (faithful-60m)": R / "faithful60m" / "lr8e-4_4800_seed1_metrics.jsonl",
    "LR 1.6e-3": R / "faithful60m" / "lr1.6e-3_2000_seed0_metrics.jsonl",
}

if __name__ == "__main__":
    runs = {label: [json.loads(line) for line in path.read_text().splitlines()] for label, path in RUNS.items()}
    print(sink_and_loss_figure(runs, ROOT / "docs" / "faithful60m.png"))
