"""`sinklab scorecard`: one row per change (ours against the paper), claims checked, plots and one HTML page."""
from __future__ import annotations

import html
from pathlib import Path

from ..errors import SinklabError
from ..report import html_table, img_tag, write_csv
from ..report.plots import integer_ticks, percent_axis, plt, save_figure
from . import SweepRun, load_suite, plan_runs, run_state


def _last(rows: list[dict], key: str) -> dict | None:
    hits = [r for r in rows if key in r]
    return hits[-1] if hits else None


def _steady_tokens_per_s(rows: list[dict]) -> int | None:
    """Median of the logged training throughput after compile warm-up (evaluation and the sink
    measurement fall between logging intervals, so they are not in it)."""
    tps = sorted(r["tokens_per_s"] for r in rows if r.get("tokens_per_s") and r["step"] > 20)
    return tps[len(tps) // 2] if tps else None


def probe_fields(m: dict | None) -> dict:
    """The sink fields of one metrics row with a probe (None: no probe yet), as the claims read them. The paper's
    Sink* puts a query on the added position (metrics.prepended_query_alpha): compare in its convention."""
    m = m or {}
    stars = m.get("sink_star_paper") or m.get("sink_star")
    return {"step": m.get("step"), "sink_1": m.get("sink_1"), "sink_star": max(stars.values()) if stars else None,
            "sink_star_convention": ("paper" if m.get("sink_star_paper") else "real queries") if stars else None,
            **{k: m.get(k) for k in ("largest_sink_position", "largest_sink", "sink_1_mask_aware", "sink_1_long",
                                     "measure_T_long", "massive_activation")}}


def run_row(run: SweepRun, preset: str) -> dict:
    from ..files import read_metrics

    path = run.folder / "metrics.jsonl"
    rows = read_metrics(path)[0] if path.exists() else []
    v = _last(rows, "val_loss")
    p = run.paper
    paper_sink = p.get("sink_1", p.get("sink_2", p.get("sink_3")))
    which = "Sink_1" if "sink_1" in p else "Sink_2" if "sink_2" in p else "Sink_3" if "sink_3" in p else ""
    return {
        "suite": run.suite, "change": run.change, "setting": run.setting if run.setting is not None else run.change,
        "preset": preset, "status": run_state(run), **probe_fields(_last(rows, "sink_1")),
        "val_loss": v["val_loss"] if v else None,
        "tokens_per_s": _steady_tokens_per_s(rows),
        "paper": paper_sink, "paper_metric": which, "paper_sink_star": p.get("sink_star"),
        "paper_loss": p.get("loss"), "paper_source": p.get("table", ""), "paper_note": p.get("note", ""),
        "_history": [r for r in rows if "sink_1" in r],
    }


def _sink_1(rows: dict[str, dict], name: str) -> float | None:
    r = rows.get(name)
    return None if r is None or r["sink_1"] is None else r["sink_1"]


def _measured(rows: dict[str, dict], *names: str) -> bool:
    return all(_sink_1(rows, n) is not None for n in names)


def _verdict(ok: bool) -> str:
    return "holds" if ok else "does not hold"


def _greater(kind: str, arg, rows: dict[str, dict]) -> tuple[str, str]:
    a, b = arg
    if not _measured(rows, a, b):
        return "not run", ""
    va, vb = _sink_1(rows, a), _sink_1(rows, b)
    return _verdict(va > vb), f"{a} {va:.2f} vs {b} {vb:.2f}"


def _threshold(kind: str, arg, rows: dict[str, dict]) -> tuple[str, str]:
    a, x = arg
    if not _measured(rows, a):
        return "not run", ""
    v = _sink_1(rows, a)
    return _verdict(v < x if kind == "below" else v > x), f"{a} {v:.2f} (threshold {x})"


def _above_all(kind: str, arg, rows: dict[str, dict]) -> tuple[str, str]:
    have = {n: _sink_1(rows, n) for n in rows if _sink_1(rows, n) is not None}
    if len(have) < len(rows):
        return "not run", ""
    ok = all(v > arg for v in have.values())
    return _verdict(ok), f"min {min(have.values()):.2f} ({min(have, key=have.get)})"


def _order(kind: str, arg, rows: dict[str, dict]) -> tuple[str, str]:
    if not _measured(rows, *arg):
        return "not run", ""
    vals = [_sink_1(rows, n) for n in arg]
    ok = all(x > y for x, y in zip(vals, vals[1:]))
    return _verdict(ok), " > ".join(f"{n} {v:.2f}" for n, v in zip(arg, vals))


def _within(kind: str, arg, rows: dict[str, dict]) -> tuple[str, str]:
    others, base, d = arg
    if not _measured(rows, base, *others):
        return "not run", ""
    v = {n: _sink_1(rows, n) for n in (base, *others)}
    ok = all(abs(v[o] - v[base]) <= d for o in others)
    return _verdict(ok), ", ".join(f"{o} {v[o]:.2f}" for o in others) + f" vs {v[base]:.2f}"


def _largest(kind: str, arg, rows: dict[str, dict]) -> tuple[str, str]:
    a, k = arg
    r = rows.get(a)
    if r is None or r["largest_sink_position"] is None:
        return "not run", ""
    pos = r["largest_sink_position"]
    ok = pos == k if kind == "largest_at" else pos <= k
    return _verdict(ok), f"largest Sink at position {pos} ({r['largest_sink']:.2f} %)"


def _star_over_first(kind: str, arg, rows: dict[str, dict]) -> tuple[str, str]:
    r = rows.get(arg)
    if r is None or r["sink_1"] is None or r["sink_star"] is None:
        return "not run", ""
    return _verdict(r["sink_star"] > r["sink_1"]), f"Sink* {r['sink_star']:.2f} vs Sink_1 {r['sink_1']:.2f}"


# claim kind (its key in the suite YAML) -> check(kind, argument, rows)
CLAIM_CHECKS = {"greater": _greater, "below": _threshold, "above": _threshold, "above_all": _above_all,
                "order": _order, "within": _within, "largest_at": _largest, "largest_within": _largest,
                "star_over_first": _star_over_first}


def check_claim(claim: dict, rows: dict[str, dict]) -> tuple[str, str]:
    """(verdict, evidence): verdict is holds / does not hold / not run."""
    kind = next(k for k in claim if k != "text")
    check = CLAIM_CHECKS.get(kind)
    if check is None:
        return "unknown claim", kind
    return check(kind, claim[kind], rows)


# A suite's claims are about how a change moves the sink of its reference run (the change named
# `baseline`, else the suite's first). A reference whose Sink_1 is below this has no sink to move,
# so each claim of the suite is inconclusive there, whatever the comparison reads.
NO_SINK_BELOW = 1.0
RULE = (f"A claim is inconclusive when its suite's reference run (baseline) has Sink_1 below {NO_SINK_BELOW:g} %: "
        "there is no sink for the change to move, so the comparison reads noise.")


def reference_run(suite: dict) -> str:
    names = [c["name"] for c in suite["changes"]]
    return "baseline" if "baseline" in names else names[0]


def judge(claim: dict, rows: dict[str, dict], reference: str) -> tuple[str, str]:
    """check_claim, then the reference rule: (holds | does not hold | inconclusive | not run, evidence)."""
    verdict, evidence = check_claim(claim, rows)
    if verdict not in ("holds", "does not hold"):
        return verdict, evidence
    ref = rows.get(reference)
    if ref is None or ref["sink_1"] is None:
        return "not run", f"{evidence}; reference run {reference} not measured"
    if ref["sink_1"] < NO_SINK_BELOW:
        return "inconclusive", f"{evidence}; {reference} Sink_1 {ref['sink_1']:.2f} % < {NO_SINK_BELOW:g} %: no sink"
    return verdict, evidence


def scorecard(suite_names_: list[str], preset: str, out: str, report_dir: str | None = None,
              extra: dict | None = None) -> dict:
    out_p = Path(out)
    report = Path(report_dir) if report_dir else out_p / preset / "scorecard"
    planned = {name: (load_suite(name), plan_runs([name], preset, out_p, data="", extra=extra))
               for name in suite_names_}
    if not (out_p / preset).is_dir():  # a mistyped --out or --preset would read as every run "not run"
        raise SinklabError(f"no runs at preset {preset} in {out}: {out_p / preset} does not exist (give the "
                           "--out and --preset the sweep used)")
    report.mkdir(parents=True, exist_ok=True)  # after every suite and override has been checked
    all_rows, all_claims, sections = [], [], []
    for name, (suite, runs) in planned.items():
        rows = {r.change: run_row(r, preset) for r in runs}
        claims = []
        for c in suite.get("claims", []):
            verdict, evidence = judge(c, rows, reference_run(suite))
            claims.append({"suite": name, "claim": c["text"], "verdict": verdict, "evidence": evidence})
        all_claims += claims
        visible = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows.values()]
        all_rows += visible
        figs = [_suite_figure(name, suite, list(rows.values()), report / f"{name}_sink.png"),
                _history_figure(name, list(rows.values()), report / f"{name}_steps.png"),
                _metrics_figure(name, list(rows.values()), report / f"{name}_metrics.png")]
        source = html.escape(suite.get("source", ""))
        sections.append(f"<h2>{html.escape(suite['title'])} <small>({source})</small></h2>"
                        + html_table(visible) + html_table(claims) + "".join(img_tag(f) for f in figs if f))
    write_csv(all_rows, report / "scorecard.csv")
    write_csv(all_claims, report / "claims.csv")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>sinklab scorecard</title><style>"
            "body{font-family:system-ui;max-width:1100px;margin:2em auto} "
            "table{border-collapse:collapse;font-size:12px;margin:.5em 0} td,th{border:1px solid #ccc;padding:2px 5px} "
            "img{max-width:100%}</style></head><body>"
            f"<h1>Reproduction of Gu et al. (ICLR 2025) at preset {html.escape(preset)}</h1>"
            "<p>Our Sink_1 is measured on 64 held-out windows of T = 64, eps = 0.3, at the step shown. "
            "The paper's values are for its 60M model after 20k steps of 1M-token batches. "
            f"{html.escape(RULE)}</p>"
            + "".join(sections) + "</body></html>")
    (report / "scorecard.html").write_text(page, encoding="utf-8")
    return {"rows": all_rows, "claims": all_claims, "folder": report}


def _suite_figure(name, suite, rows, path):
    have = [r for r in rows if r["sink_1"] is not None]
    if not have:
        return None
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(rows) + 2), 3.5))
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r["sink_1"] or 0 for r in rows], width=0.4, label="ours: Sink_1", color="#4477aa")
    stars = [(i, r["sink_star"]) for i, r in zip(x, rows) if r["sink_star"] is not None]
    if stars:
        ax.scatter([i - 0.2 for i, _ in stars], [v for _, v in stars], marker="*", s=120, color="#aa3377",
                   label="ours: Sink*")
    ax.bar([i + 0.2 for i in x], [r["paper"] or 0 for r in rows], width=0.4, label="paper", color="#bbbbbb")
    ax.set_xticks(list(x))
    ax.set_xticklabels([str(r["setting"]) for r in rows], rotation=30, ha="right")
    percent_axis(ax, "Sink (%)")
    ax.set_title(suite["title"])
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def _history_figure(name, rows, path):
    if not any(r["_history"] for r in rows):
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for r in rows:
        h = r["_history"]
        if h:
            ax.plot([m["step"] for m in h], [m["sink_1"] for m in h], marker=".", label=str(r["setting"]))
    ax.set_xlabel("step")
    integer_ticks(ax.xaxis)
    percent_axis(ax, "Sink_1 (%)")
    ax.set_title(f"{name}: Sink_1 against step")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def _metrics_figure(name, rows, path):
    """Per run: Sink_1 beside the largest Sink_k, validation loss, massive activation, tokens/s."""
    have = [r for r in rows if r["sink_1"] is not None]
    if not have:
        return None
    fig, axes = plt.subplots(1, 4, figsize=(max(10, 1.2 * len(have) * 2), 3.4))
    x = list(range(len(have)))
    labels = [str(r["setting"]) for r in have]
    axes[0].bar([i - 0.2 for i in x], [r["sink_1"] for r in have], 0.4, label="Sink_1", color="#4477aa")
    axes[0].bar([i + 0.2 for i in x], [r["largest_sink"] or 0 for r in have], 0.4, label="largest Sink_k",
                color="#ee6677")
    axes[0].legend(fontsize=7)
    percent_axis(axes[0], "%")
    for ax, key, title in ((axes[1], "val_loss", "validation loss"),
                           (axes[2], "massive_activation", "massive activation (x median)"),
                           (axes[3], "tokens_per_s", "training tokens/s")):
        ax.bar(x, [r[key] or 0 for r in have], color="#228833")
        ax.set_title(title, fontsize=9)
    axes[0].set_title("Sink_1 and the largest Sink_k", fontsize=9)
    for ax in axes:
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=40, ha="right", fontsize=7)
    fig.suptitle(name)
    fig.tight_layout()
    return save_figure(fig, path)


def sink_star_text(r: dict) -> str:
    """Sink* with its convention named where it is not the paper's."""
    if r["sink_star"] is None:
        return ""
    return f"{r['sink_star']:.2f}" + ("" if r.get("sink_star_convention") == "paper" else " (real queries)")


def scorecard_markdown(result: dict) -> str:
    lines = ["| suite | change | step | our Sink_1 % | our Sink* % | largest at | largest % | Sink_1 % at long T "
             "| massive act. | val loss | tokens/s | paper | source |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    f = lambda v: "" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
    for r in result["rows"]:
        paper = (f"{r['paper_metric']} {r['paper']}" if r["paper"] is not None else "") + \
                (f", Sink* {r['paper_sink_star']}" if r["paper_sink_star"] is not None else "") + \
                (f" ({r['paper_note']})" if r["paper_note"] else "")
        lines.append(f"| {r['suite']} | {r['change']} | {f(r['step'])} | {f(r['sink_1'])} | {sink_star_text(r)} | "
                     f"{f(r['largest_sink_position'])} | {f(r['largest_sink'])} | "
                     f"{f(r['sink_1_long']) + (' (T=%d)' % r['measure_T_long'] if r['measure_T_long'] else '')} | "
                     f"{f(r['massive_activation'])} | "
                     f"{f(r['val_loss'])} | {f(r['tokens_per_s'])} | {paper} | {r['paper_source']} |")
    lines += ["", "Sink* of a K/KV bias or a sink token is in the paper's convention: the added position has a query "
              "that sees only itself, so its alpha is (1 + sum over the T real queries) / (T + 1).",
              "", RULE, "", "| suite | claim | verdict | evidence |", "|---|---|---|---|"]
    lines += [f"| {c['suite']} | {c['claim']} | {c['verdict']} | {c['evidence']} |" for c in result["claims"]]
    return "\n".join(lines)
