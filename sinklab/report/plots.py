"""Matplotlib figures for one measurement. Each reads only the result's tables and small arrays.

Every figure has a `draw_*` function that returns the Figure (tests read its axes) and a saving
wrapper. Sink percentages are drawn on [0, 100], layer and head axes have integer ticks, and colour
scales carry a colourbar; attention maps use a log scale, since a sink column next to weights of
1/T would otherwise be the only visible pixel, and repeat key 0 in a strip of its own, wider than
its one column of T in the map.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

MAP_FLOOR = 1e-3  # attention weights below this share one colour on the log scale


def save_figure(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def percent_axis(ax, label: str | None = None) -> None:
    """A Sink axis: percentages from 0 up to a little above the largest value drawn (at least 5, so
    noise near 0 does not fill the plot; at most 100). Call it after drawing."""
    top = ax.dataLim.y1 if ax.has_data() and np.isfinite(ax.dataLim.y1) else 100.0
    ax.set_ylim(0, float(min(100.0, max(5.0, top * 1.1))))
    if label:
        ax.set_ylabel(label)


def integer_ticks(axis) -> None:
    axis.set_major_locator(MaxNLocator(integer=True))


def draw_alpha1_heatmap(alpha1, title: str):
    fig, ax = plt.subplots(figsize=(max(4, alpha1.shape[1] * 0.45 + 2), max(3, alpha1.shape[0] * 0.22 + 1.5)))
    im = ax.imshow(alpha1.numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    integer_ticks(ax.xaxis)
    integer_ticks(ax.yaxis)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="mean alpha_1")
    return fig


def alpha1_heatmap(alpha1, path: Path, title: str) -> Path:
    return save_figure(draw_alpha1_heatmap(alpha1, title), path)


def _clipped_se(values, se):
    """Error bars clipped to [0, 100]: a percentage cannot leave it, whatever its standard error."""
    se = np.nan_to_num(np.asarray(se, dtype=float))
    return np.stack([np.minimum(se, values), np.minimum(se, 100 - values)])


def _peak_ticks(ax, peak: float) -> None:
    """Symlog percent ticks 0, 1, 3, 10, 30, 100 up to the axis top, plus the peak itself: a 73 % Sink_1
    would otherwise sit unlabelled between 30 and 100. Ticks within x1.6 of the peak would crowd its label."""
    top = ax.get_ylim()[1]
    ticks = [t for t in (0, 1, 3, 10, 30, 100) if t <= top and not (peak >= 1 and peak / 1.6 < t < peak * 1.6)]
    if peak >= 1:  # below 1 % the 0 and 1 ticks already bracket it
        ticks = sorted(ticks + [peak])
    ax.set_yticks(ticks, [f"{t:.0f}" if t >= 10 else f"{t:.2g}" for t in ticks])


def draw_sink_by_position(sweep: list[dict], T: int, eps: float, sink_all):
    rows = [r for r in sweep if r["T"] == T and r["eps"] == eps and not r["position"].startswith("sink*")]
    values = np.array([r["sink_pct"] for r in rows], dtype=float)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.5))
    a1.bar([int(r["position"]) for r in rows], values, yerr=_clipped_se(values, [r["sink_se"] for r in rows]),
           color="#4477aa")
    a1.set_xlabel("position k")
    percent_axis(a1, f"Sink_k (%), eps={eps:g}")
    integer_ticks(a1.xaxis)
    a1.set_title(f"first positions, T={T}")
    every = sink_all.float().numpy()
    a2.plot(range(1, len(every) + 1), every, color="#4477aa")
    a2.set_xlabel("position k")
    a2.set_yscale("symlog", linthresh=1)  # later positions sit at 0-4 %, under a peak near 100
    percent_axis(a2, "Sink_k (%)")
    _peak_ticks(a2, min(100.0, float(np.nanmax(every))) if np.isfinite(every).any() else 0.0)
    integer_ticks(a2.xaxis)
    a2.set_title("every position (late k average few queries)")
    return fig


def sink_by_position(sweep: list[dict], T: int, eps: float, sink_all, path: Path) -> Path:
    return save_figure(draw_sink_by_position(sweep, T, eps, sink_all), path)


def _sink_at_one_T(sweep: list[dict], T: int):
    """One T makes no curve (a single dot): Sink_1 at each eps instead, with its value, and how to get a curve."""
    rows = sorted((r for r in sweep if r["position"] == "1"), key=lambda r: r["eps"])
    values = np.array([r["sink_pct"] for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    x = np.arange(len(rows))
    yerr = _clipped_se(values, [r["sink_se"] for r in rows])
    ax.bar(x, values, yerr=yerr, width=0.5, color="#4477aa")
    for xi, v, top in zip(x, values, values + yerr[1]):  # above the error bar, which bar_label would overwrite
        ax.annotate(f"{v:.1f}", (xi, top), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=8)
    ax.set_xticks(x, [f"{r['eps']:g}" for r in rows])
    ax.set_xlim(-0.75, len(rows) - 0.25)  # one eps: a bar, not a block across the axis
    ax.set_xlabel("eps")
    percent_axis(ax, "Sink_1 (%)")
    ax.set_title(f"Sink_1 at T={T}: only one T measured\n"
                 f"for Sink_1 against T, measure several (e.g. --T {T} {2 * T} {4 * T})", fontsize=9)
    return fig


def draw_sink_vs_T(sweep: list[dict]):
    Ts = sorted({r["T"] for r in sweep})
    if len(Ts) == 1:
        return _sink_at_one_T(sweep, Ts[0])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for eps in sorted({r["eps"] for r in sweep}):
        rows = sorted((r for r in sweep if r["eps"] == eps and r["position"] == "1"), key=lambda r: r["T"])
        ax.plot([r["T"] for r in rows], [r["sink_pct"] for r in rows], marker="o", label=f"eps={eps:g}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(Ts, [str(t) for t in Ts])
    ax.minorticks_off()
    ax.set_xlabel("T")
    percent_axis(ax, "Sink_1 (%)")
    ax.legend()
    ax.set_title("Sink_1 against context length")
    return fig


def sink_T_heading(sweep: list[dict]) -> str:
    Ts = sorted({r["T"] for r in sweep})
    return f"Sink_1 at T={Ts[0]} (one T measured)" if len(Ts) == 1 else "Sink_1 against T"


def sink_vs_T(sweep: list[dict], path: Path) -> Path:
    return save_figure(draw_sink_vs_T(sweep), path)


def draw_norms_by_layer(layers: list[dict], T: int):
    rows = [r for r in layers if r["T"] == T]
    x = [r["layer"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.5))
    for key, label in (("hidden_ratio", "hidden h"), ("key_ratio", "key k"), ("value_ratio", "value v")):
        a1.plot(x, [r[key] for r in rows], marker=".", label=label)
    a1.axhline(1.0, color="grey", lw=0.8, ls="--")
    a1.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")  # 170 and 1.2, not 1.7 x 10^2 and 1.2 x 10^0
    a1.yaxis.set_major_formatter(plain)
    low, high = a1.get_ylim()
    if high / low < 10:  # less than a decade: only minor ticks are drawn, so label them
        a1.yaxis.set_minor_formatter(plain)
    a1.set_ylabel("||x_1|| / median_t>1 ||x_t||")
    a1.legend()
    a1.set_title("first token against the rest")
    a2.plot(x, [r["cos_first"] for r in rows], marker=".", label="cos(q_t, k_1)")
    a2.plot(x, [r["cos_rest"] for r in rows], marker=".", label="cos(q_t, k_j), j>1")
    a2.set_ylim(-1, 1)
    a2.legend()
    a2.set_title("q.k angle: first key against the others")
    for ax in (a1, a2):
        ax.set_xlabel("layer")
        integer_ticks(ax.xaxis)
    return fig


def norms_by_layer(layers: list[dict], T: int, path: Path) -> Path:
    return save_figure(draw_norms_by_layer(layers, T), path)


def top_heads(alpha1, count: int = 4) -> list[tuple[int, int]]:
    """(layer, head) of the `count` heads with the largest mean alpha_1, largest first."""
    H = alpha1.shape[1]
    return [divmod(i, H) for i in alpha1.flatten().argsort(descending=True)[:count].tolist()]


def heads_heading(alpha1, eps: float, count: int = 4) -> str:
    """What the attention-map figure shows: the selection rule, and whether those heads are sinks."""
    heads = top_heads(alpha1, count)
    top = float(alpha1[heads[0]])
    above = sum(float(alpha1[lh]) > eps for lh in heads)
    which = f"the {len(heads)} heads with the largest mean alpha_1"
    if above == len(heads):
        return f"Attention maps of {which} (all above eps = {eps:g}; one sample)"
    if above == 0:
        return (f"Attention maps of {which} (none is a sink head: the largest mean alpha_1 is {top:.2f}, "
                f"below eps = {eps:g}; one sample)")
    return f"Attention maps of {which} ({above} above eps = {eps:g}; one sample)"


def _head_panel(fig, spec, shown, title: str, cmap, norm):
    """One head: key 0 alone in a strip 1/12 of the panel wide, then the whole map. In the map the sink
    column is 1 of T columns, a hairline at T = 64 and beyond."""
    strip_spec, map_spec = spec.subgridspec(1, 2, width_ratios=[1, 11], wspace=0.06)
    strip = fig.add_subplot(strip_spec, label="sink column")
    ax = fig.add_subplot(map_spec, sharey=strip)
    strip.imshow(shown[:, :1], cmap=cmap, norm=norm, interpolation="nearest", aspect="auto")
    strip.set_xticks([0], ["0"])
    strip.set_xlabel("sink")
    strip.set_ylabel("query")
    integer_ticks(strip.yaxis)
    im = ax.imshow(shown, cmap=cmap, norm=norm, interpolation="nearest", aspect="auto")
    ax.tick_params(labelleft=False)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("key")
    integer_ticks(ax.xaxis)
    return im


def draw_strongest_heads(attention_maps, alpha1, count: int = 4):
    heads = top_heads(alpha1, count)
    fig = plt.figure(figsize=(3.6 * len(heads) + 0.8, 3.3))
    cmap = plt.get_cmap("magma").with_extremes(bad="#dddddd")  # grey: keys a causal query cannot see
    norm = LogNorm(vmin=MAP_FLOOR, vmax=1, clip=True)
    im = None
    for spec, (l, h) in zip(fig.add_gridspec(1, len(heads), wspace=0.3), heads):
        a = attention_maps[l, h].float().numpy()
        shown = np.where(np.tri(*a.shape, dtype=bool), np.maximum(a, MAP_FLOOR), np.nan)
        im = _head_panel(fig, spec, shown, f"layer {l} head {h}\nmean alpha_1={float(alpha1[l, h]):.2f}", cmap, norm)
    fig.colorbar(im, ax=list(fig.axes), label=f"attention weight (log; < {MAP_FLOOR:g} at the floor)", shrink=0.9)
    return fig


def strongest_heads(attention_maps, alpha1, path: Path, count: int = 4) -> Path:
    fig = draw_strongest_heads(attention_maps, alpha1, count)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")  # the shared colourbar does not suit tight_layout
    plt.close(fig)
    return path


def _token_label(row: dict) -> str:
    name = row["token"] or f"id {row['token_id']}"
    if row["where"] == "first":
        return "position 1"
    return f"{name[:14]}  ({row['position_min']}-{row['position_max']}, n={row['occurrences']})"


def draw_sink_tokens(rows: list[dict], eps: float, count: int = 12):
    """Share of heads in which each token is a sink: position 1, then the later tokens with the most
    sink (occurrence, head) pairs, labelled with their position range and occurrences."""
    shown = rows[:1] + rows[1:count + 1]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(shown) + 1.4))
    y = np.arange(len(shown))
    colours = ["#aa3377" if r["where"] == "first" else "#4477aa" for r in shown]
    bars = ax.barh(y, [r["head_share_pct"] for r in shown], color=colours)
    ax.bar_label(bars, fmt="%.1f", padding=2, fontsize=7)  # a later sink of 5 % is a sliver beside position 1
    ax.set_yticks(y, [_token_label(r) for r in shown], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"share of (layer, head) pairs with alpha > {eps:g} (%)")
    ax.set_title("sink tokens by identity (labels: positions, occurrences)")
    return fig


def sink_tokens_figure(rows: list[dict], eps: float, path: Path) -> Path:
    return save_figure(draw_sink_tokens(rows, eps), path)


def measurement_figures(result, folder: Path) -> dict[str, Path]:
    s = result.summary
    figs = {
        "Mean alpha_1 by layer and head": alpha1_heatmap(result.alpha1, folder / "alpha1_heatmap.png",
                                                         f"{s['model']}: mean alpha_1, T={s['T']}"),
        f"Sink_k against k (T={s['T']}, eps={s['eps']:g})": sink_by_position(
            result.sweep, s["T"], s["eps"], result.sink_by_position, folder / "sink_by_position.png"),
        sink_T_heading(result.sweep): sink_vs_T(result.sweep, folder / "sink_vs_T.png"),
        f"Norms and angles by layer (T={s['T']})": norms_by_layer(result.layers, s["T"], folder / "norms_by_layer.png"),
    }
    if getattr(result, "sink_tokens", None):
        figs["Sink tokens by identity"] = sink_tokens_figure(result.sink_tokens, s["eps"],
                                                             folder / "sink_tokens.png")
    if result.attention_maps is not None:
        figs[heads_heading(result.alpha1, s["eps"])] = strongest_heads(
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
    return save_figure(fig, path)
