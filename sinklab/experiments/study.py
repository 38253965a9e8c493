"""`sinklab study`: every suite's runs at one preset, with seeds, on the GPUs present, in pieces.

A piece ends at its deadline: each run still training gets SIGTERM, stops after its current step
with a checkpoint (`sinklab train` exits 3), and the next piece resumes it there; finished runs are
skipped. As each run finishes, the records file is rebuilt from every finished run, so a piece that
is cut short loses nothing that had finished. The claims are then judged over seeds by
`verdicts.judge_over_seeds`.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SinklabError
from . import _unique, failure_reason, load_suite, plan_runs
from .runs import SweepRun, run_state, train_command
from .verdicts import judge_over_seeds

STOPPED_EXIT = 3           # `sinklab train` stopped on SIGTERM, with a checkpoint (cli.common.STOPPED_EXIT)
TIME_FILE = "study_time.json"


def plan_study(suite_names_: list[str], preset: str, out: Path, data: str, seeds: int = 2,
               reference_seeds: int = 3, extra: dict | None = None, only: list[str] | None = None) -> list[SweepRun]:
    """Every change of the suites with `seeds` seeds (train.seed 0, 1, ...) and each suite's reference run
    with `reference_seeds`. Runs with one config share a folder (every suite's baseline is trained once)."""
    from .scorecard import reference_run

    if seeds < 1 or reference_seeds < 1:
        raise SinklabError(f"--seeds and --reference-seeds must be at least 1 (got {seeds}, {reference_seeds})")
    runs = []
    for name in suite_names_:
        reference = reference_run(load_suite(name))
        for seed in range(max(seeds, reference_seeds)):
            for r in plan_runs([name], preset, out, data, only, extra={**(extra or {}), "train.seed": seed}):
                if seed < (reference_seeds if r.change == reference else seeds):
                    runs.append(r)
    return runs


def seed_of(run: SweepRun) -> int:
    return int(run.overrides.get("train.seed", 0))


@dataclass
class Piece:
    """What one piece of a study did."""
    finished: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    remaining: int = 0

    @property
    def complete(self) -> bool:
        return not (self.stopped or self.failed or self.remaining)


@dataclass
class Slot:
    gpu: str | None             # CUDA_VISIBLE_DEVICES of the slot (None: a CPU process)
    run: SweepRun | None = None
    process: subprocess.Popen | None = None
    started: float = 0.0
    log: object = None


def slots_for(runs: list[SweepRun], per_gpu: int, gpus: int | None) -> list[Slot]:
    """`per_gpu` runs at once on each GPU; where every run trains on the CPU, `per_gpu` CPU processes."""
    import torch

    from ..train.config import resolve_configs

    if per_gpu < 1:
        raise SinklabError(f"--per-gpu must be at least 1 (got {per_gpu})")
    if runs and all(resolve_configs(r.preset, r.overrides)[1].device == "cpu" for r in runs):
        return [Slot(None) for _ in range(per_gpu)]
    seen = torch.cuda.device_count()
    n = seen if gpus is None else gpus
    if n < 1 or n > seen:
        raise SinklabError(f"--gpus {n}: PyTorch sees {seen} CUDA GPU(s); give at most that, or train on CPU "
                           "processes with --set train.device=cpu")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    physical = visible.split(",") if visible else [str(i) for i in range(seen)]
    return [Slot(physical[g]) for g in range(n) for _ in range(per_gpu)]


def run_study(runs: list[SweepRun], deadline_s: float, slots: list[Slot], records: Path, grace_s: float = 120,
              min_start_s: float = 0, echo=print, stop_when=None) -> Piece:
    """Train what is not done until the deadline (or until `stop_when()` is true), then stop every
    active run with a checkpoint."""
    end = time.monotonic() + deadline_s
    due = (lambda: time.monotonic() >= end) if stop_when is None else (lambda: time.monotonic() >= end or stop_when())
    queue = [r for r in _unique(runs) if run_state(r) != "done"]
    piece, per_gpu = Piece(), _per_gpu(slots)
    echo(f"{len(_unique(runs))} distinct runs: {len(_unique(runs)) - len(queue)} done, {len(queue)} to run, "
         f"{len(slots)} at a time, deadline in {deadline_s:.0f} s")
    while queue or any(s.run for s in slots):
        if time.monotonic() < end - min_start_s:
            for slot in (s for s in slots if s.run is None and queue):
                _start(slot, queue.pop(0), echo)
        for slot in (s for s in slots if s.run and s.process.poll() is not None):
            _finish(slot, runs, records, piece, per_gpu, echo)
        if due():
            _stop_all(slots, runs, records, piece, per_gpu, grace_s, echo)
            break
        if not any(s.run for s in slots) and time.monotonic() >= end - min_start_s:
            break
        time.sleep(0.2)
    unfinished = len([r for r in _unique(runs) if run_state(r) != "done"])
    piece.remaining = unfinished - len(piece.stopped) - len(piece.failed)
    return piece


def _per_gpu(slots: list[Slot]) -> int:
    gpus = [s.gpu for s in slots]
    return max(gpus.count(g) for g in set(gpus)) if gpus else 1


def _start(slot: Slot, run: SweepRun, echo) -> None:
    run.folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SINKLAB_NO_PROGRESS="1")
    if slot.gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = slot.gpu
    slot.log = open(run.folder / "train.log", "a")
    slot.run, slot.started = run, time.monotonic()
    slot.process = subprocess.Popen(train_command(run), env=env, stdout=slot.log, stderr=subprocess.STDOUT)
    where = f"GPU {slot.gpu}" if slot.gpu is not None else "CPU"
    echo(f"{where}: {run.change} seed {seed_of(run)} ({run_state(run)}) -> {run.folder}")


def _finish(slot: Slot, runs: list[SweepRun], records: Path, piece: Piece, per_gpu: int, echo,
            stopped: bool = False) -> None:
    run, rc = slot.run, slot.process.returncode
    slot.log.close()
    _add_time(run.folder, time.monotonic() - slot.started, per_gpu)
    label = f"{run.change} seed {seed_of(run)}"
    if rc == 0 and run_state(run) == "done":
        piece.finished.append(label)
        write_records(runs, records)
        echo(f"finished: {label}")
    elif rc == STOPPED_EXIT or stopped:
        piece.stopped.append(label)
        echo(f"stopped at the deadline: {label} (the next piece resumes it)")
    else:
        reason = failure_reason(run.folder / "train.log")
        piece.failed.append(f"{label} (exit {rc}{': ' + reason if reason else ''}; log {run.folder / 'train.log'})")
    slot.run = slot.process = None


def _stop_all(slots, runs, records, piece, per_gpu, grace_s, echo) -> None:
    """SIGTERM to every active run, then wait for its checkpoint (SIGKILL after grace_s)."""
    active = [s for s in slots if s.run]
    for s in active:
        s.process.send_signal(signal.SIGTERM)
    for s in active:
        try:
            s.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            s.process.kill()
            s.process.wait()
        _finish(s, runs, records, piece, per_gpu, echo, stopped=True)


def _add_time(folder: Path, wall_s: float, per_gpu: int) -> None:
    """Accumulate a run's wall time over pieces; its GPU time is the wall time over the runs sharing a GPU."""
    path = folder / TIME_FILE
    t = json.loads(path.read_text()) if path.exists() else {"wall_s": 0.0, "gpu_s": 0.0, "pieces": 0}
    t = {"wall_s": t["wall_s"] + wall_s, "gpu_s": t["gpu_s"] + wall_s / per_gpu, "pieces": t["pieces"] + 1}
    path.write_text(json.dumps({k: round(v, 2) for k, v in t.items()}))


def record(run: SweepRun) -> dict:
    """One finished run's row: its final probe, loss, data passes and time."""
    from ..train.config import resolve_configs
    from .scorecard import run_row

    row = run_row(run, run.preset)
    _, tc = resolve_configs(run.preset, run.overrides)
    meta = json.loads((run.folder / "ckpt" / "sinklab.json").read_text()) if (run.folder / "ckpt").is_dir() else {}
    corpus = ((meta.get("data_manifest") or {}).get("tokens") or {}).get("train")
    seen = tc.steps * tc.global_batch * tc.seq_len
    timing = json.loads((run.folder / TIME_FILE).read_text()) if (run.folder / TIME_FILE).exists() else {}
    keep = ("step", "sink_1", "sink_star", "sink_star_convention", "largest_sink_position", "largest_sink",
            "massive_activation", "val_loss", "tokens_per_s")
    return {"suite": run.suite, "change": run.change, "setting": row["setting"], "seed": seed_of(run),
            "preset": run.preset, "run": run.folder.name, **{k: row[k] for k in keep},
            "tokens_seen": seen, "corpus_tokens": corpus,
            "passes": round(seen / (corpus * (tc.data_fraction or 1.0)), 3) if corpus else None,
            "wall_s": timing.get("wall_s"), "gpu_s": timing.get("gpu_s")}


def write_records(runs: list[SweepRun], path: Path) -> list[dict]:
    """Rebuild the records file from every finished run (written beside, then renamed)."""
    rows = sorted((record(r) for r in runs if run_state(r) == "done"),
                  key=lambda r: (r["suite"], r["change"], r["seed"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(path.name + ".partial")
    staged.write_text("".join(json.dumps(r) + "\n" for r in rows))
    staged.replace(path)
    return rows


SCIENCE_FIELDS = ("suite", "change", "seed", "run", "step", "sink_1", "sink_star", "largest_sink_position",
                  "largest_sink", "massive_activation", "val_loss")


def claim_verdicts(rows: list[dict], suite_names_: list[str], min_seeds: int = 2,
                   min_reference_seeds: int = 3) -> list[dict]:
    """Every claim of the suites judged over the seeds in the records."""
    from .scorecard import reference_run

    out = []
    for name in suite_names_:
        suite = load_suite(name)
        seed_rows: dict[str, dict[int, dict]] = {c["name"]: {} for c in suite["changes"]}
        for r in (r for r in rows if r["suite"] == name):
            seed_rows[r["change"]][r["seed"]] = r
        for claim in suite.get("claims", []):
            v = judge_over_seeds(claim, seed_rows, reference_run(suite), min_seeds, min_reference_seeds)
            out.append({"suite": name, "claim": claim["text"], "verdict": v.verdict, "effect": v.effect,
                        "low": v.low, "high": v.high, "spread": v.spread, "evidence": v.evidence})
    return out
