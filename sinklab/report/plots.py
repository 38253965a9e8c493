"""Matplotlib figures for one measurement. Each reads only the result's tables and small arrays."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def alpha1_heatmap(alpha1, path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(max(4, alpha1.shape[1] * 0.45 + 2), max(3, alpha1.shape[0] * 0.22 + 1.5)))
    im = ax.imshow(alpha1.numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="mean alpha_1")
    return _save(fig, path)


def sink_by_position(sweep: list[dict], T: int, eps: float, sink_all, path: Path) -> Path:
    rows = [r for r in sweep if r["T"] == T and r["eps"] == eps and not r["position"].startswith("sink*")]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.5))
    a1.bar([int(r["position"]) for r in rows], [r["sink_pct"] for r in rows],
           yerr=[r["sink_se"] for r in rows], color="#4477aa")
    a1.set_xlabel("position k")
    a1.set_ylabel(f"Sink_k (%), eps={eps:g}")
    a1.set_title(f"first positions, T={T}")
    a2.plot(range(1, len(sink_all) + 1), sink_all.numpy(), color="#4477aa")
    a2.set_xlabel("position k")
    a2.set_yscale("symlog", linthresh=1)
    a2.set_title("every position (late k average few queries)")
    return _save(fig, path)


def sink_vs_T(sweep: list[dict], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for eps in sorted({r["eps"] for r in sweep}):
        rows = sorted((r for r in sweep if r["eps"] == eps and r["position"] == "1"), key=lambda r: r["T"])
        ax.plot([r["T"] for r in rows], [r["sink_pct"] for r in rows], marker="o", label=f"eps={eps:g}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("T")
    ax.set_ylabel("Sink_1 (%)")
    ax.legend()
    ax.set_title("Sink_1 against context length")
    return _save(fig, path)


def norms_by_layer(layers: list[dict], T: int, path: Path) -> Path:
    rows = [r for r in layers if r["T"] == T]
    x = [r["layer"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.5))
    for key, label in (("hidden_ratio", "hidden h"), ("key_ratio", "key k"), ("value_ratio", "value v")):
        a1.plot(x, [r[key] for r in rows], marker=".", label=label)
    a1.axhline(1.0, color="grey", lw=0.8, ls="--")
    a1.set_yscale("log")
    a1.set_xlabel("layer")
    a1.set_ylabel("||x_1|| / median_t>1 ||x_t||")
    a1.legend()
    a1.set_title("first token against the rest")
    a2.plot(x, [r["cos_first"] for r in rows], marker=".", label="cos(q_t, k_1)")
    a2.plot(x, [r["cos_rest"] for r in rows], marker=".", label="cos(q_t, k_j), j>1")
    a2.set_xlabel("layer")
    a2.legend()
    a2.set_title("q.k angle: first key against the others")
    return _save(fig, path)


def strongest_heads(attention_maps, alpha1, path: Path, count: int = 4) -> Path:
    flat = alpha1.flatten().argsort(descending=True)[:count]
    H = alpha1.shape[1]
    fig, axes = plt.subplots(1, len(flat), figsize=(3.2 * len(flat), 3.2))
    axes = axes if len(flat) > 1 else [axes]
    for ax, idx in zip(axes, flat.tolist()):
        l, h = divmod(idx, H)
        ax.imshow(attention_maps[l, h].numpy(), cmap="magma", vmin=0, vmax=1)
        ax.set_title(f"layer {l} head {h}\nalpha_1={alpha1[l, h]:.2f}", fontsize=9)
        ax.set_xlabel("key")
        ax.set_ylabel("query")
    return _save(fig, path)


def measurement_figures(result, folder: Path) -> dict[str, Path]:
    s = result.summary
    figs = {
        "Mean alpha_1 by layer and head": alpha1_heatmap(result.alpha1, folder / "alpha1_heatmap.png",
                                                         f"{s['model']}: mean alpha_1, T={s['T']}"),
        "Sink_k against k": sink_by_position(result.sweep, s["T"], s["eps"], result.sink_by_position,
                                             folder / "sink_by_position.png"),
        "Sink_1 against T": sink_vs_T(result.sweep, folder / "sink_vs_T.png"),
        "Norms and angles by layer": norms_by_layer(result.layers, s["T"], folder / "norms_by_layer.png"),
    }
    if result.attention_maps is not None:
        figs["Attention maps of the strongest sink heads (one sample)"] = strongest_heads(
            result.attention_maps, result.alpha1, folder / "strongest_heads.png")
    return figs


def running_perplexity(result, path: Path) -> Path:
    """Running perplexity against position for each streaming policy (mean over streams)."""
    import torch

    fig, ax = plt.subplots(figsize=(7, 4))
    for policy, nll in result["nll"].items():
        finite = torch.isfinite(nll)
        per_pos = torch.where(finite, nll, torch.zeros_like(nll)).sum(0)
        count = finite.sum(0)
        keep = count > 0
        pos = torch.arange(1, nll.shape[1] + 1)[keep]
        running = (per_pos[keep].cumsum(0) / count[keep].cumsum(0)).exp()
        ax.plot(pos.numpy(), running.numpy(), label=policy, lw=1.2)
    ax.axvline(result["cache_size"], color="grey", ls="--", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("position in the stream")
    ax.set_ylabel("running perplexity")
    ax.set_title(f"cache {result['cache_size']} tokens, {result['n_sink']} sinks")
    ax.legend()
    return _save(fig, path)
