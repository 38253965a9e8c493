"""Which heads carry Sink_1, and do they attend at all?

For each layer and head of a sinklab checkpoint, on the trainer's probe (the same held-out windows
of a data folder): the share of probe samples with alpha_1 > eps (the head's part of Sink_1), the
mean alpha_1, and the mean row mass sum_j w_ij of the raw weights. Under softmax the row mass is 1.
Without normalisation (sigmoid, elu+1) a head whose proxy scores sit on token 1 while its row mass
is near 0 writes almost nothing: a dormant head that the proxy reads as a sink.

    python scripts/sink_heads.py RUN/ckpt/step-000400 --data py8k [--n 64 --T 64 --eps 0.3] [--out heads.json]
"""
import argparse
import json

import torch

from sinklab.data.shards import open_split
from sinklab.model.checkpoint import load_model
from sinklab.train.loop import TrainConfig, _probe


@torch.no_grad()
def head_table(model, ids: torch.Tensor, eps: float) -> list[dict]:
    captured = {}
    hooks = []
    for i, block in enumerate(model.layers):
        hooks.append(block.attn.hook_q.register_forward_hook(lambda m, a, o, i=i: captured.__setitem__(("q", i), o)))
        hooks.append(block.attn.hook_k.register_forward_hook(lambda m, a, o, i=i: captured.__setitem__(("k", i), o)))
    model(ids)
    for h in hooks:
        h.remove()
    cfg, n_prefix = model.cfg, model.n_prefix
    T_total = ids.shape[1] + n_prefix
    ctx = model._context(T_total, ids.device)
    rows = []
    for i, block in enumerate(model.layers):
        attn = block.attn
        q, k = captured[("q", i)], captured[("k", i)]
        k = k.repeat_interleave(attn.n_heads // attn.n_kv, dim=1)
        w = attn.weights(q, k, ctx["pos_bias"], ctx["mask_fn"], 0, T_total)       # (B, H, T, extra + T)
        first = w.shape[-1] - T_total + n_prefix                                  # column of real token 1
        measured = attn.measured_weights(q, k, ctx["pos_bias"], ctx["mask_fn"], 0, T_total) \
            if cfg.proxy_scores else w
        # alpha_1 over the real queries: rows from position 1 on see token 1
        alpha_1 = measured[:, :, n_prefix:, first].mean(-1)                      # (B, H)
        for h in range(attn.n_heads):
            rows.append({"layer": i, "head": h,
                         "sink_share_pct": round(100 * float((alpha_1[:, h] > eps).float().mean()), 2),
                         "mean_alpha_1": round(float(alpha_1[:, h].mean()), 4),
                         "row_mass": round(float(w[:, h, n_prefix:].sum(-1).mean()), 4),
                         "mass_on_token_1": round(float(w[:, h, n_prefix:, first].mean()), 4)})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", required=True, help="the run's data folder (the probe is its held-out split)")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--T", type=int, default=64)
    ap.add_argument("--eps", type=float, default=0.3)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_model(a.checkpoint, device=device)
    _, manifest = open_split(a.data, "val")
    ids = _probe(TrainConfig(data=a.data, measure_n=a.n, measure_T=a.T), manifest).to(device)
    rows = head_table(model, ids, a.eps)
    sink_1 = sum(r["sink_share_pct"] for r in rows) / len(rows)
    print(f"Sink_1 = {sink_1:.2f} % over {len(rows)} heads ({a.n} samples, T = {a.T}, eps = {a.eps})")
    print("layer head  share%  mean_alpha_1  row_mass  mass_on_1")
    for r in sorted(rows, key=lambda r: -r["sink_share_pct"])[:12]:
        print(f"{r['layer']:5d} {r['head']:4d} {r['sink_share_pct']:7.2f} {r['mean_alpha_1']:13.4f} "
              f"{r['row_mass']:9.4f} {r['mass_on_token_1']:10.4f}")
    masses = sorted(r["row_mass"] for r in rows)
    print(f"row mass over all heads: min {masses[0]:.4f}, median {masses[len(masses) // 2]:.4f}, max {masses[-1]:.4f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"checkpoint": a.checkpoint, "sink_1_pct": sink_1, "eps": a.eps, "n": a.n, "T": a.T,
                       "heads": rows}, f, indent=1)


if __name__ == "__main__":
    main()
