"""Which heads carry Sink_1, and do they attend at all?

For each layer and head of a sinklab checkpoint, on the trainer's probe (the same held-out windows
of a data folder), read from the measurement's heads table (position 1): the share of probe
samples with alpha_1 > eps (the head's part of Sink_1), the mean alpha_1, the mean row mass
sum_j w_ij of the weights applied, and their mean weight on token 1. Under softmax the row mass is 1.
Without normalisation (sigmoid, elu+1) a head whose proxy scores sit on token 1 while its row mass
is near 0 writes almost nothing: a dormant head that the proxy reads as a sink.

    python scripts/sink_heads.py RUN/ckpt --data py8k [--n 64 --T 64 --eps 0.3] [--probe doc_starts] [--out heads.json]

--probe is the trainer's train.measure_probe: windows (default) at random offsets of the held-out
split; doc_starts, the first T tokens of held-out documents, as the paper's probe.
"""
import argparse
import json

import torch

from sinklab.data.shards import document_starts, open_split
from sinklab.measure.run import measure
from sinklab.model.checkpoint import load_sinklm
from sinklab.measure.sinklab_model import wrap_sinklab_model
from sinklab.train.config import TrainConfig
from sinklab.train.probe import probe_ids


def head_table(model, ids: torch.Tensor, eps: float) -> list[dict]:
    """Position 1's row of `sinklab measure`'s heads table, on these probe windows."""
    r = measure(wrap_sinklab_model(model), probe="tokens", input_ids=ids, T=ids.shape[1], eps=eps, K=1,
                batch_size=16, keep_map_upto=0, progress=False)
    rows = []
    for h in (h for h in r.heads if h["position"] == 1):
        row = {"layer": h["layer"], "head": h["head"], "sink_share_pct": round(100 * h[f"sink_rate_eps{eps:g}"], 2),
               "mean_alpha_1": round(h["mean_alpha"], 4)}
        if "mean_weight" in h:  # unnormalised attention: the weights applied, beside the proxy
            row.update(row_mass=round(h["row_mass"], 4), mass_on_token_1=round(h["mean_weight"], 4))
        else:  # softmax family: rows sum to 1 and the weight on token 1 is the share
            row.update(row_mass=1.0, mass_on_token_1=row["mean_alpha_1"])
        rows.append(row)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", required=True, help="the run's data folder (the probe is its held-out split)")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--T", type=int, default=64)
    ap.add_argument("--eps", type=float, default=0.3)
    ap.add_argument("--probe", choices=("windows", "doc_starts", "doc-starts"), default="windows")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_sinklm(a.checkpoint, device=device)
    val, manifest = open_split(a.data, "val")
    tc = TrainConfig(data=a.data, measure_n=a.n, measure_T=a.T, measure_probe=a.probe.replace("-", "_"))
    if tc.measure_probe == "doc_starts":
        available = len(document_starts(val, manifest["eot_id"], None, a.T))
        if available < a.n:
            print(f"note: the held-out split has only {available} documents of at least {a.T} tokens")
            tc.measure_n = a.n = available
    ids = probe_ids(tc, manifest).to(device)  # the trainer's own probe
    rows = head_table(model, ids, a.eps)
    sink_1 = sum(r["sink_share_pct"] for r in rows) / len(rows)
    print(f"Sink_1 = {sink_1:.2f} % over {len(rows)} heads ({a.n} {a.probe} samples, T = {a.T}, eps = {a.eps})")
    print("layer head  share%  mean_alpha_1  row_mass  mass_on_1")
    for r in sorted(rows, key=lambda r: -r["sink_share_pct"])[:12]:
        print(f"{r['layer']:5d} {r['head']:4d} {r['sink_share_pct']:7.2f} {r['mean_alpha_1']:13.4f} "
              f"{r['row_mass']:9.4f} {r['mass_on_token_1']:10.4f}")
    masses = sorted(r["row_mass"] for r in rows)
    print(f"row mass over all heads: min {masses[0]:.4f}, median {masses[len(masses) // 2]:.4f}, max {masses[-1]:.4f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"checkpoint": a.checkpoint, "sink_1_pct": sink_1, "eps": a.eps, "n": a.n, "T": a.T, "probe": a.probe,
                       "heads": rows}, f, indent=1)


if __name__ == "__main__":
    main()
