"""The comparison of several measurements: compare.csv and a figure of Sink_1 and mean alpha_1
against model, revision or training step. Reads only the rows of compare.csv."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from . import write_csv  # noqa: E402


def draw_comparison(rows: list[dict]):
    """Two panels sharing the x axis: the training step where every row names one, else the labels."""
    by_step = all(r["step"] != "" for r in rows) and len({r["step"] for r in rows}) == len(rows)
    ordered = sorted(rows, key=lambda r: r["step"]) if by_step else rows
    x = [r["step"] for r in ordered] if by_step else list(range(len(ordered)))
    fig, (ax_sink, ax_alpha) = plt.subplots(2, 1, figsize=(max(5.0, 0.6 * len(rows) + 3), 5.5), sharex=True)
    ax_sink.errorbar(x, [r["sink_1_pct"] for r in ordered], yerr=[r["sink_1_se"] for r in ordered],
                     marker="o", capsize=3)
    ax_sink.set_ylim(0, 100)
    ax_sink.set_ylabel(f"Sink_1 (%), eps = {ordered[0]['eps']:g}")
    ax_alpha.plot(x, [r["mean_alpha_1"] for r in ordered], marker="o", color="tab:orange")
    ax_alpha.set_ylim(0, 1)
    ax_alpha.set_ylabel("mean alpha_1")
    if by_step:
        ax_alpha.set_xlabel("training step")
    else:
        ax_alpha.set_xticks(x, [r["label"] for r in ordered], rotation=30, ha="right")
    ax_sink.set_title(f"{ordered[0]['probe']} probe, T = {ordered[0]['T']}, n = {ordered[0]['n']}")
    for ax in (ax_sink, ax_alpha):
        ax.grid(alpha=0.3)
    return fig


def write_comparison(rows: list[dict], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / "compare.csv")
    fig = draw_comparison(rows)
    fig.tight_layout()
    fig.savefig(out / "compare.png", dpi=110)
    plt.close(fig)
    return out / "compare.png"
