"""The terminal summary of a measurement, from its summary and sweep alone (what `sinklab measure` prints)."""
from __future__ import annotations


def format_summary(result) -> str:
    """The terminal summary: fits on one screen."""
    s = result.summary
    lines = [f"model  {s['model']}  ({s['layers']} layers x {s['heads']} heads)",
             f"probe  {s['probe']}   n={s['n']}  T={s['T']}  eps={s['eps']}  bos={s['bos']}",
             ""]
    lines += _sink_lines(s) + _sweep_lines(s, result.sweep) + _diagnostic_lines(s)
    route = (s.get("model_info") or {}).get("capture_route")
    if route and route != "AttentionInterface":
        lines.append(f"captured through {route}: key norms and the q.k split are not available")
    lines.append("")
    lines.append(f"load {s['load_time_s']:.1f} s, measure {s['measure_time_s']:.1f} s")
    return "\n".join(lines)


def _sink_lines(s: dict) -> list[str]:
    """Sink_k, Sink_1 with its error, Sink*, the proxy-score caveat, the largest sink, sink tokens."""
    ks = list(s["sink"])
    lines = ["Sink_k (%)  " + "  ".join(f"k={k:>2}" for k in ks),
             "            " + "  ".join(f"{s['sink'][k]:5.1f}" for k in ks),
             f"Sink_1 = {s['sink']['1']:.2f} % (± {s['sink_se']['1']:.2f} s.e. over samples),"
             f" mean alpha_1 = {s['mean_alpha_1']:.3f}"]
    if s.get("sink_star"):
        lines.append("Sink* on added positions (alpha over the real queries): "
                     + ", ".join(f"{k} = {v:.2f} %" for k, v in s["sink_star"].items()))
    if s.get("sink_star_paper"):
        lines.append("Sink* in the paper's convention (a prepended query that sees only itself): "
                     + ", ".join(f"{k} = {v:.2f} %" for k, v in s["sink_star_paper"].items()))
    if s.get("unnormalised"):
        u = s["unnormalised"]
        top = u["max_head_weight_1"]
        lines.append(f"unnormalised attention (Sink reads proxy scores): Sink_1 counting only heads that also put "
                     f"> eps of weight on token 1 = {u['sink_1_share_and_weight']:.2f} %; largest mean weight on "
                     f"token 1 {top['weight']:.3f} (layer {top['layer']}, head {top['head']}); "
                     f"row mass median {u['row_mass']['median']:.3f}")
    ls = s["largest_sink"]
    lines.append(f"largest Sink at position {ls['position']} ({ls['sink_pct']:.1f} %, {ls['searched']})")
    if s.get("sink_tokens"):
        lines.append(f"{s['sink_tokens']['line']} (by token id, {s['sink_tokens']['searched']})")
    return lines


def _sweep_lines(s: dict, sweep: list[dict]) -> list[str]:
    """Sink_1 for every T and eps measured, when there are several."""
    if len(s["Ts"]) == 1 and len(s["eps_values"]) == 1:
        return []
    lines = ["", "Sink_1 (%)   " + "  ".join(f"eps={e:<4g}" for e in s["eps_values"])]
    for t in s["Ts"]:
        vals = {r["eps"]: r["sink_pct"] for r in sweep if r["T"] == t and r["position"] == "1"}
        lines.append(f"T={t:<9d} " + "  ".join(f"{vals[e]:8.2f}" for e in s["eps_values"]))
    return lines


def _diagnostic_lines(s: dict) -> list[str]:
    """The massive activation and the q.k split behind the sink, where the hidden states were seen."""
    d = s["diagnostics"]
    hr = d["hidden_ratio"]
    finite = [(v, i) for i, v in enumerate(hr) if v == v]
    if not finite:
        return []
    peak, at = max(finite)
    readers = list(range(at + 1, len(hr))) or [at]   # layers whose keys read that residual stream
    med = lambda xs: sorted(xs)[len(xs) // 2]
    mean = lambda xs: sum(xs) / len(xs)
    return ["",
            f"massive activation: ||h_1||/median ||h_t|| peaks at {peak:.1f} (output of layer {at});"
            f" in layers {readers[0]}-{readers[-1]}, median ||k_1||/median = "
            f"{med([d['key_ratio'][i] for i in readers]):.2f}, ||v_1||/median = "
            f"{med([d['value_ratio'][i] for i in readers]):.2f}",
            f"q.k split (mean over layers): cos(q,k_1) = {mean(d['cos_first']):.3f} vs {mean(d['cos_rest']):.3f} "
            f"for other keys; ||q||.||k_1|| = {mean(d['normprod_first']):.1f} vs {mean(d['normprod_rest']):.1f}"]
