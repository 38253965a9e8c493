"""A sweep's run and its state on disk: what the local runner and the cluster launcher share."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Run:
    suite: str
    change: str
    overrides: dict          # "model.x" / "train.x" -> value
    paper: dict
    setting: object
    folder: Path
    preset: str


def run_state(run: Run) -> str:
    """done (finished: its last checkpoint is at the last step), partial (a checkpoint to resume from)
    or new (nothing to resume: whatever a run killed before its first checkpoint left is replaced)."""
    from ..train.runs import checkpoints

    found = checkpoints(run.folder)
    if not found:
        return "new"
    try:
        m = json.loads((found[0] / "sinklab.json").read_text())
        return "done" if m["step"] >= m["train"]["steps"] else "partial"
    except (OSError, ValueError, KeyError):
        return "partial"  # resuming passes over a checkpoint that does not load


def train_command(run: Run) -> list[str]:
    args = [f"{k}={json.dumps(v) if isinstance(v, (list, dict, bool)) or v is None else v}"
            for k, v in {**run.overrides, "train.out": str(run.folder)}.items()]
    return [sys.executable, "-m", "sinklab.cli", "train", run.preset, *args,
            "--resume" if run_state(run) == "partial" else "--overwrite"]
