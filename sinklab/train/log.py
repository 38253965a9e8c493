"""The run's log: metrics.jsonl, one JSON row per logged step, and TensorBoard if asked for."""
from __future__ import annotations

import json
from pathlib import Path

from .config import TrainConfig


class Logger:
    def __init__(self, out: Path, tc: TrainConfig, active: bool):
        self.active = active
        self.f = open(out / "metrics.jsonl", "a") if active else None
        self.tb = None
        if active and tc.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tb"))
            except ImportError:
                print("note: tensorboard is not installed; logging to metrics.jsonl only")

    def log(self, row: dict) -> None:
        if not self.active:
            return
        self.f.write(json.dumps(row) + "\n")
        self.f.flush()
        if self.tb:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "step":
                    self.tb.add_scalar(k, v, row["step"])

    def close(self) -> None:
        if self.f:
            self.f.close()
        if self.tb:
            self.tb.close()
