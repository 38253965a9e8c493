"""Measure several models, hub revisions or saved checkpoints with one command, and compare them.

`expand(models, revisions)` turns the `--model` / `--revision` options into named entries: a hub
model at several revisions (Pythia and OLMo publish training checkpoints as revisions), several
models, or every saved checkpoint of a sinklab run (`RUN/checkpoints/step*`). Each entry is measured
into its own folder; `compare.csv` and the comparison figure are rewritten after each one, so a
failure part-way keeps what was measured.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import SinklabError

_STEP = re.compile(r"(?:^|[^a-z])step[-_]?(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Entry:
    label: str                 # folder name under --out, and the comparison's x tick
    spec: str                  # what load_model takes
    revision: str | None = None
    step: int | None = None    # training step, where the revision or checkpoint names one


def step_of(name: str) -> int | None:
    """The training step a revision or folder names ("step143000", "stage1-step1000-tokens5B")."""
    m = _STEP.search(name)
    return int(m.group(1)) if m else None


def run_checkpoints(folder: Path) -> list[Path]:
    """A sinklab run's saved checkpoints (RUN/checkpoints/step*/), oldest first; [] if it has none."""
    root = folder / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and (p / "sinklab.json").exists() and step_of(p.name) is not None]
    return sorted(found, key=lambda p: step_of(p.name))


def expand(models: list[str] | None, revisions: list[str] | None) -> list[Entry]:
    """The entries to measure, in order. Raises on a repeated --model or --revision."""
    models = list(models or [None])
    _no_repeats(models, "--model")
    _no_repeats(revisions or [], "--revision")
    if revisions:
        if len(models) != 1 or models[0] is None:
            raise SinklabError("--revision takes the revisions of one hub model: give exactly one --model")
        spec = models[0]
        return [Entry(_safe(f"{Path(spec).name}@{r}"), spec, r, step_of(r)) for r in revisions]
    entries = []
    for spec in models:
        saved = run_checkpoints(Path(os.path.expanduser(spec))) if spec else []
        if saved and len(models) == 1:  # one run: trace Sink across its saved steps
            entries += [Entry(p.name, str(p), None, step_of(p.name)) for p in saved]
        else:
            entries.append(Entry(_label(spec), spec or "smollm2", None, None))
    return _unique_labels(entries)


def _no_repeats(values: list, option: str) -> None:
    seen = set()
    for v in values:
        key = None if v is None else os.path.normpath(os.path.expanduser(v)) if option == "--model" else v
        if key in seen:
            raise SinklabError(f"{option} {v} is given twice")
        seen.add(key)


def _label(spec: str | None) -> str:
    if spec is None:
        return "smollm2"
    p = Path(os.path.expanduser(spec))
    return _safe(p.stem if p.suffix == ".gguf" else p.name or spec)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@=+-]", "_", name) or "model"


def _unique_labels(entries: list[Entry]) -> list[Entry]:
    """Two folders of the same name (runs/a/ckpt, runs/b/ckpt) get their parents' names too."""
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.label] = counts.get(e.label, 0) + 1
    out, used = [], set()
    for e in entries:
        label = e.label
        if counts[label] > 1:
            label = _safe(f"{Path(e.spec).parent.name}_{label}")
        while label in used:
            label += "_"
        used.add(label)
        out.append(Entry(label, e.spec, e.revision, e.step))
    return out


def compare_row(entry: Entry, summary: dict) -> dict:
    """One row of compare.csv from a measurement's summary."""
    return {"label": entry.label, "model": summary["model"], "revision": entry.revision or "",
            "step": "" if entry.step is None else entry.step, "probe": summary["probe"], "T": summary["T"],
            "eps": summary["eps"], "n": summary["n"], "sink_1_pct": summary["sink"]["1"],
            "sink_1_se": summary["sink_se"]["1"], "mean_alpha_1": summary["mean_alpha_1"],
            "largest_sink_position": summary["largest_sink"]["position"],
            "layers": summary["layers"], "heads": summary["heads"]}


def measure_all(entries: list[Entry], out: Path, measure_one, write_one, write_comparison) -> list[str]:
    """Measure each entry into out/LABEL; after each, rewrite the comparison. A failing entry is
    reported by name and skipped. Returns the failures' messages."""
    rows, failures = [], []
    for i, entry in enumerate(entries, 1):
        print(f"[{i}/{len(entries)}] {entry.label}", flush=True)
        try:
            result = measure_one(entry)
        except SinklabError as e:
            failures.append(f"{entry.label}: {e}")
            print(f"sinklab: error: {entry.label}: {e}", file=sys.stderr, flush=True)
            continue
        write_one(result, out / entry.label)
        rows.append(compare_row(entry, result.summary))
        write_comparison(rows, out)
    return failures
