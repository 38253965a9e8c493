"""Re-measure the final checkpoints of scripts/cpu_sparse.sh on the training probe, with the paper's
alpha, the mask-aware alpha, and NSA's branches.    python scripts/cpu_sparse_measure.py runs/cpu_sparse
"""
import json
import sys
from pathlib import Path

from sinklab.measure.run import measure
from sinklab.measure.sinklab_model import load_for_measurement
from sinklab.train.config import TrainConfig
from sinklab.train.probe import probe_ids

root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/cpu_sparse")
print("| run | val loss | Sink_1 % (paper alpha) | Sink_1 % (mask-aware) | largest Sink at | Sink_1 by NSA branch % |")
print("|---|---|---|---|---|---|")
for run in sorted(p for p in root.iterdir() if (p / "ckpt" / "COMPLETE").exists()):
    meta = json.loads((run / "ckpt" / "sinklab.json").read_text())
    probe = probe_ids(TrainConfig.from_dict(meta["train"]), meta["data_manifest"])
    s = measure(load_for_measurement(run / "ckpt"), probe="tokens", input_ids=probe, T=probe.shape[1],
                progress=False).summary
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = [r["val_loss"] for r in rows if "val_loss" in r][-1]
    aware = (s["sink_mask_aware"] or {}).get("1", s["sink"]["1"])
    branches = ", ".join(f"{k} {v:.2f}" for k, v in (s["sink_by_branch"] or {}).items())
    print(f"| {run.name} | {val:.3f} | {s['sink']['1']:.2f} | {aware:.2f} | {s['largest_sink']['position']} "
          f"({s['largest_sink']['sink_pct']:.2f} %) | {branches} |")
