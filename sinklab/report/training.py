"""`sinklab report RUN_DIR`: Sink_1 and loss against step from metrics.jsonl, and a link to the full
measurement report of the run's last checkpoint on the trainer's own probe (final_measure/).

The report only reads what is in the run folder: measuring that checkpoint is the trainer's work
(`sinklab.train.probe.measure_final_checkpoint`), done before the report by whoever calls it."""
from __future__ import annotations

import html
import json
from pathlib import Path

from ..errors import SinklabError
from ..files import read_metrics
from .plots import integer_ticks, percent_axis, plt, save_figure


def read_run_metrics(run: str | Path) -> list[dict]:
    """The complete rows of run/metrics.jsonl; a last line cut short is skipped with a note."""
    run = Path(run)
    path = run / "metrics.jsonl"
    if not path.exists():
        raise SinklabError(f"{run} has no metrics.jsonl: is it a training run folder?")
    rows, dropped = read_metrics(path)
    if dropped:
        print(f"note: {path}: skipped its last line, cut short (the run was stopped while writing it)")
    if not rows:
        raise SinklabError(f"{path} has no complete row")
    return rows


def draw_sink_and_loss(runs: dict[str, list[dict]]):
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    many = len(runs) > 3  # many runs: validation loss only, from step 200, so the curves stay apart
    for label, rows in runs.items():
        m = [r for r in rows if "sink_1" in r]
        line, = a1.plot([r["step"] for r in m], [r["sink_1"] for r in m], marker="o", ms=3, label=label)
        lv = [r for r in rows if "loss" in r]
        if not many:
            a2.plot([r["step"] for r in lv], [r["loss"] for r in lv], lw=0.8, label=f"{label} train")
        vv = [r for r in rows if "val_loss" in r and (not many or r["step"] >= 200)]
        if vv:
            a2.plot([r["step"] for r in vv], [r["val_loss"] for r in vv], marker="s", ms=3, color=line.get_color(),
                    label=f"{label} val" if not many else label)
    percent_axis(a1, "Sink_1 (%), eps=0.3")
    a1.set_title("Sink against training step")
    a2.set_ylabel("loss")
    a2.set_title("validation loss" if many else "loss")
    for a in (a1, a2):
        a.set_xlabel("step")
        integer_ticks(a.xaxis)
        a.legend(fontsize=8)
    return fig


def sink_and_loss_figure(runs: dict[str, list[dict]], path: Path) -> Path:
    return save_figure(draw_sink_and_loss(runs), path)


def draw_sink_against_step(rows: list[dict]):
    """Sink_1 and the largest Sink_k against step, from tracked rows (sinks.jsonl)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    steps = [r["step"] for r in rows]
    ax.plot(steps, [r["sink_1"] for r in rows], marker="o", ms=3, label="Sink_1")
    ax.plot(steps, [r["largest_sink"] for r in rows], marker="s", ms=3, ls="--", label="largest Sink_k")
    percent_axis(ax, "Sink (%)")
    ax.set_xlabel("step")
    integer_ticks(ax.xaxis)
    ax.set_title("Sink against training step")
    ax.legend(fontsize=8)
    return fig


def sink_against_step_figure(rows: list[dict], path: Path) -> Path:
    return save_figure(draw_sink_against_step(rows), path)


MEASURED_COLUMNS = ("step", "loss", "val_loss", "sink_1", "mean_alpha_1", "largest_sink_position",
                    "massive_activation", "tokens_per_s", "mfu")


def throughput(rows: list[dict]) -> str:
    """One line: the median logged tokens/s after warm-up, the overall rate, MFU where known."""
    tps = sorted(r["tokens_per_s"] for r in rows if r.get("tokens_per_s") and r["step"] > 10) or \
        sorted(r["tokens_per_s"] for r in rows if r.get("tokens_per_s"))
    if not tps:
        return "throughput: not logged"
    overall = [r["tokens_per_s_overall"] for r in rows if r.get("tokens_per_s_overall")]
    mfu = [r["mfu"] for r in rows if r.get("mfu") is not None]
    text = f"throughput: {tps[len(tps) // 2]:,} tokens/s while training (median of {len(tps)} logged intervals)"
    if overall:
        text += f", {overall[-1]:,} tokens/s overall (evaluation and sink measurement included)"
    text += f", MFU {sorted(mfu)[len(mfu) // 2]:.1%}" if mfu else " (MFU: no known peak for this device)"
    return text


def _config_block(run: Path) -> str:
    path = run / "config.json"
    if not path.exists():
        return "<p>config.json is missing.</p>"
    try:
        cfg = json.loads(path.read_text())
    except ValueError:
        return "<p>config.json does not parse.</p>"
    lines = [f"{section}.{k} = {v!r}" for section in ("model", "train") for k, v in (cfg.get(section) or {}).items()]
    lines.append(f"world_size = {cfg.get('world_size', 1)}")
    return f"<pre>{html.escape(chr(10).join(lines))}</pre>"


def report_run(run: str | Path, rows: list[dict] | None = None) -> Path:
    """run/report.html from the run folder as it is (rows: its metrics, read here when not given)."""
    run = Path(run)
    rows = read_run_metrics(run) if rows is None else rows
    fig = sink_and_loss_figure({run.name: rows}, run / "sink_vs_step.png")
    from . import STYLE, html_table, img_tag

    measured = [{k: r.get(k) for k in MEASURED_COLUMNS} for r in rows if "sink_1" in r]
    shown = [k for k in MEASURED_COLUMNS if any(m[k] is not None for m in measured)]  # no all-empty column
    measured = [{k: m[k] for k in shown} for m in measured]
    final = run / "final_measure" / "report.html"
    link = ('<p><a href="final_measure/report.html">measurement report of the last checkpoint</a> '
            '(the trainer\'s probe; tables in final_measure/)</p>') if final.exists() else ""
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>sinklab run {html.escape(run.name)}</title>"
            f"<style>{STYLE}</style></head><body><h1>Training run {html.escape(run.name)}</h1>"
            f"<p>{html.escape(throughput(rows))}. Logged rows: <a href='metrics.jsonl'>metrics.jsonl</a>; "
            f"the config that ran: <a href='config.json'>config.json</a>.</p>"
            f"{img_tag(fig)}{link}<h2>Measurements</h2>{html_table(measured, 200)}"
            f"<h2>The config that ran</h2>{_config_block(run)}</body></html>")
    (run / "report.html").write_text(page, encoding="utf-8")
    return run / "report.html"
