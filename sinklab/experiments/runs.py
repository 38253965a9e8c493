"""A sweep's run and its state on disk: what the local runner and the cluster launcher share."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class SweepRun:
    suite: str
    change: str
    overrides: dict          # "model.x" / "train.x" -> value
    paper: dict
    setting: object
    folder: Path
    preset: str


def run_state(run: SweepRun) -> str:
    """done (its last checkpoint is at the last step and its metrics hold that step's Sink, which the
    scorecard reads), partial (a checkpoint to resume from) or new (nothing to resume: whatever a run
    killed before its first checkpoint left, or a finished run whose metrics are gone, is trained again)."""
    from ..train.runs import checkpoints

    found = checkpoints(run.folder)
    if not found:
        return "new"
    try:
        m = json.loads((found[0] / "sinklab.json").read_text())
        finished = m["step"] >= m["train"]["steps"]
    except (OSError, ValueError, KeyError):
        return "partial"  # resuming passes over a checkpoint that does not load
    if not finished:
        return "partial"
    return "done" if has_final_sink(run.folder / "metrics.jsonl", m["train"]["steps"]) else "new"


def has_final_sink(metrics: Path, steps: int) -> bool:
    """Whether a run's log holds the Sink measured at its last step (what "done" means to the scorecard)."""
    from ..errors import SinklabError
    from ..files import read_metrics

    if not metrics.is_file():
        return False
    try:
        rows, _ = read_metrics(metrics)
    except SinklabError:
        return False
    return any(r.get("step") == steps and r.get("sink_1") is not None for r in rows)


def train_command(run: SweepRun) -> list[str]:
    args = [f"{k}={json.dumps(v) if isinstance(v, (list, dict, bool)) or v is None else v}"
            for k, v in {**run.overrides, "train.out": str(run.folder)}.items()]
    return [sys.executable, "-m", "sinklab.cli", "train", run.preset, *args,
            "--resume" if run_state(run) == "partial" else "--overwrite"]
