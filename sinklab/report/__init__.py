"""Write a measurement's tables, figures and one self-contained HTML page. Plots read only the tables."""
from __future__ import annotations

import base64
import csv
import html
import json
import os
from pathlib import Path

from ..files import claim_output_folder, staged_folder
from . import plots
from .text import format_summary

RESULT_MARKER = "summary.json"  # a folder holding it holds a measurement


def write_csv(rows: list[dict], path: Path) -> None:
    if not rows:
        return
    fields = list(rows[0].keys())
    for r in rows[1:]:
        fields += [k for k in r if k not in fields]
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def write_json(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=float))
    tmp.replace(path)


def write_results(result, out: str | os.PathLike, figures: bool = True, overwrite: bool = False) -> Path:
    """summary.json, sweep.csv, heads.csv, layers.csv, sink_tokens.csv, figures/*.png and report.html under `out`.

    A folder that already holds a measurement (summary.json) is replaced only with `overwrite`. Everything
    is written beside `out` first and then moved into place, tables before figures: a failure while
    writing keeps what was written and names where it is.
    """
    out = claim_output_folder(out, RESULT_MARKER, overwrite, option="out")
    with staged_folder(out, option="out") as staging:
        write_json(result.summary, staging / "summary.json")
        write_csv(result.sweep, staging / "sweep.csv")
        write_csv(result.heads, staging / "heads.csv")
        write_csv(result.layers, staging / "layers.csv")
        write_csv(getattr(result, "sink_tokens", []), staging / "sink_tokens.csv")
        if figures:
            figs = plots.measurement_figures(result, staging / "figures")
            write_html(result, figs, staging / "report.html")
    return out


def img_tag(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">'


def html_table(rows: list[dict], limit: int = 40) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in cols) + "</tr>"
                   for r in rows[:limit])
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def sink_k_lines(sink: dict) -> list[str]:
    """The summary's Sink_k header and values, each value under its header (one width for both)."""
    cells = [(f"k={k}", f"{v:.1f}") for k, v in sink.items()]
    width = max(len(c) for pair in cells for c in pair)
    return ["Sink_k (%)  " + "  ".join(h.rjust(width) for h, _ in cells),
            "            " + "  ".join(v.rjust(width) for _, v in cells)]


def summary_text(result) -> str:
    """The terminal summary, with its Sink_k table aligned for the page."""
    lines = format_summary(result).splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.startswith("Sink_k (%)"):
            lines[i:i + 2] = sink_k_lines(result.summary["sink"])
            break
    return "\n".join(lines)


CSV_TABLES = {"sweep.csv": "Sink_k and mean alpha_k for every T, eps and position",
              "heads.csv": "every (layer, head, position): mean alpha and the share of samples above each eps",
              "layers.csv": "per layer: norm ratios, q.k angles and norms, mean alpha_1",
              "sink_tokens.csv": "by token id: position 1, then every later token that is a sink (share of heads, "
                                 "mean alpha, positions)",
              "summary.json": "everything above, machine-readable"}

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
pre{background:#f6f6f6;padding:1em;white-space:pre-wrap;overflow-wrap:anywhere}
img{max-width:100%;border:1px solid #ddd}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"""


def _selection(s: dict) -> str:
    """Which T and eps the headline numbers use, said out loud when several were measured."""
    if len(s.get("Ts", [s["T"]])) == 1 and len(s.get("eps_values", [s["eps"]])) == 1:
        return f"T={s['T']}, eps={s['eps']:g}"
    return (f"T={s['T']}, eps={s['eps']:g}: the first T and eps given; every T and eps measured "
            f"({', '.join(map(str, s['Ts']))}; {', '.join(f'{e:g}' for e in s['eps_values'])}) are in sweep.csv")


def write_html(result, figures: dict[str, Path], path: Path) -> None:
    s = result.summary
    sections = [f"<h2>{html.escape(title)}</h2>{img_tag(p)}" for title, p in figures.items()]
    first = [r for r in result.sweep if r["T"] == s["T"] and r["eps"] == s["eps"]]
    links = "".join(f'<li><a href="{name}">{name}</a>: {html.escape(what)}</li>' for name, what in CSV_TABLES.items()
                    if (path.parent / name).exists())
    run = {k: s[k] for k in ('versions', 'device', 'dtype', 'seed', 'wall_time_s', 'model_info') if k in s}
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>sinklab: {html.escape(s['model'])}</title>
<style>{STYLE}</style>
</head><body><h1>Attention sinks in {html.escape(s['model'])}</h1>
<p>Sink<sub>k</sub><sup>&epsilon;</sup> is the percentage of (layer, head) pairs whose importance score
&alpha;<sub>k</sub> (mean attention that the queries able to see position k give to it) exceeds &epsilon;,
thresholded per sample and averaged (Gu et al., ICLR 2025).</p>
<pre>{html.escape(summary_text(result))}</pre>
<h2>Tables</h2><ul>{links}</ul>
<h2>Sink by position ({html.escape(_selection(s))})</h2>{html_table(first)}
{''.join(sections)}
<h2>Run</h2><pre>{html.escape(json.dumps(run, indent=1, default=str))}</pre>
</body></html>"""
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)


__all__ = ["RESULT_MARKER", "write_results", "write_csv", "write_json", "write_html", "summary_text", "sink_k_lines",
           "format_summary", "img_tag", "html_table"]
