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
    rows: dict = field(default_factory=dict, repr=False)  # finished runs' records, by (suite, folder): read once

    @property
    def complete(self) -> bool:
        return not (self.stopped or self.failed or self.remaining)


@dataclass
class Slot:
    gpu: str | None             # CUDA_VISIBLE_DEVICES of the slot (None: a CPU process)
    run: SweepRun | None = None
    process: subprocess.Popen | None = None
    wall_s: float = 0.0         # the active run's time in this piece, and its share of the GPU
    gpu_s: float = 0.0
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
    """Train what is not done until the deadline (or until `stop_when()` is true, or the runner gets SIGTERM),
    then stop every active run with a checkpoint. Whatever ends the loop, an error included, no run is left
    training: a rerun would otherwise train the same folder beside it."""
    from ..train.loop import StopRequest

    end = time.monotonic() + deadline_s
    queue = [r for r in _unique(runs) if run_state(r) != "done"]
    piece = Piece()
    echo(f"{len(_unique(runs))} distinct runs: {len(_unique(runs)) - len(queue)} done, {len(queue)} to run, "
         f"{len(slots)} at a time, deadline in {deadline_s:.0f} s")
    with StopRequest.on_sigterm(True) as interrupted:
        due = lambda: time.monotonic() >= end or interrupted.requested or bool(stop_when and stop_when())  # noqa: E731
        try:
            _train_until(queue, slots, lambda: time.monotonic() < end - min_start_s and not due(), due,
                         lambda slot, run: _start(slot, run, echo),
                         lambda slot: _finish(slot, runs, records, piece, echo))
        finally:
            _stop_all(slots, runs, records, piece, grace_s, echo)
    unfinished = len([r for r in _unique(runs) if run_state(r) != "done"])
    piece.remaining = max(0, unfinished - len(piece.stopped) - len(piece.failed))
    return piece


def _train_until(queue, slots, may_start, due, start, finish) -> None:
    """Keep the slots busy while `may_start()`, charge each active run its share of its GPU, finish the runs
    that exit, and return once `due()` or once nothing runs and nothing may start."""
    last = time.monotonic()
    while queue or any(s.run for s in slots):
        now = time.monotonic()
        _charge(slots, now - last)
        last = now
        if may_start():
            for slot in (s for s in slots if s.run is None and queue):
                start(slot, queue.pop(0))
        for slot in (s for s in slots if s.run and s.process.poll() is not None):
            finish(slot)
        if due() or not (any(s.run for s in slots) or may_start()):
            return
        time.sleep(0.2)


def _charge(slots: list[Slot], dt: float) -> None:
    """Each active run's wall time, and its share of a GPU that several runs share at that moment."""
    active = [s for s in slots if s.run]
    for s in active:
        s.wall_s += dt
        if s.gpu is not None:
            s.gpu_s += dt / sum(o.gpu == s.gpu for o in active)


def _start(slot: Slot, run: SweepRun, echo) -> None:
    run.folder.mkdir(parents=True, exist_ok=True)
    if run_state(run) == "new":  # trained from scratch (--overwrite): an earlier attempt's time is not this run's
        (run.folder / TIME_FILE).unlink(missing_ok=True)
    env = dict(os.environ, SINKLAB_NO_PROGRESS="1")
    if slot.gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = slot.gpu
    slot.log = open(run.folder / "train.log", "a")
    slot.run, slot.wall_s, slot.gpu_s = run, 0.0, 0.0
    slot.process = subprocess.Popen(train_command(run), env=env, stdout=slot.log, stderr=subprocess.STDOUT)
    where = f"GPU {slot.gpu}" if slot.gpu is not None else "CPU"
    echo(f"{where}: {run.change} seed {seed_of(run)} ({run_state(run)}) -> {run.folder}")


def _finish(slot: Slot, runs: list[SweepRun], records: Path, piece: Piece, echo, at_deadline: bool = False) -> None:
    """A run that exited: done (whatever its exit code: a report killed after the last step loses no result),
    stopped with a checkpoint to resume, or failed with the line of its log that says why."""
    run, rc = slot.run, slot.process.returncode
    slot.log.close()
    _add_time(run.folder, slot.wall_s, slot.gpu_s if slot.gpu is not None else None)
    label = f"{run.change} seed {seed_of(run)}"
    stop_codes = {STOPPED_EXIT, -signal.SIGTERM} | ({-signal.SIGKILL} if at_deadline else set())
    if run_state(run) == "done":
        piece.finished.append(label)
        write_records(runs, records, piece.rows)
        echo(f"finished: {label}")
    elif rc in stop_codes:
        piece.stopped.append(label)
        echo(f"stopped at the deadline: {label} (the next piece resumes it)")
    else:
        reason = failure_reason(run.folder / "train.log")
        piece.failed.append(f"{label} (exit {rc}{': ' + reason if reason else ''}; log {run.folder / 'train.log'})")
    slot.run = slot.process = None


def _stop_all(slots, runs, records, piece, grace_s, echo) -> None:
    """SIGTERM to every active run, then wait for its checkpoint (SIGKILL once grace_s has passed for all)."""
    active = [s for s in slots if s.run]
    for s in active:
        if s.process.poll() is None:
            s.process.send_signal(signal.SIGTERM)
    until = time.monotonic() + grace_s
    for s in active:
        try:
            s.process.wait(timeout=max(0.0, until - time.monotonic()))
        except subprocess.TimeoutExpired:
            s.process.kill()
            s.process.wait()
    _charge(active, 0.0)
    for s in active:
        _finish(s, runs, records, piece, echo, at_deadline=True)


def _add_time(folder: Path, wall_s: float, gpu_s: float | None) -> None:
    """Accumulate a run's wall and GPU time over pieces (GPU time: None on CPU slots); written beside, renamed."""
    path = folder / TIME_FILE
    try:
        t = json.loads(path.read_text())
    except (OSError, ValueError):
        t = {"wall_s": 0.0, "gpu_s": 0.0, "pieces": 0}
    gpu = None if gpu_s is None or t.get("gpu_s") is None else t["gpu_s"] + gpu_s
    t = {"wall_s": round(t["wall_s"] + wall_s, 2), "gpu_s": None if gpu is None else round(gpu, 2),
         "pieces": t["pieces"] + 1}
    staged = path.with_name(path.name + ".partial")
    staged.write_text(json.dumps(t))
    staged.replace(path)


def record(run: SweepRun) -> dict:
    """One finished run's row: its final probe, loss, data passes and time."""
    from ..train.config import resolve_configs
    from ..train.runs import checkpoints
    from .scorecard import run_row

    row = run_row(run, run.preset)
    _, tc = resolve_configs(run.preset, run.overrides)
    saved = checkpoints(run.folder)
    meta = json.loads((saved[0] / "sinklab.json").read_text()) if saved else {}
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


def write_records(runs: list[SweepRun], path: Path, known: dict | None = None) -> list[dict]:
    """Rebuild the records file from every finished run (written beside, then renamed). `known` keeps the
    rows read so far, by (suite, folder): a finished run's row does not change, so it is read once."""
    known = {} if known is None else known
    fresh = {(r.suite, r.folder): record(r) for r in runs
             if (r.suite, r.folder) not in known and run_state(r) == "done"}
    # a run that exited but whose time the runner has not added yet is read again next time
    known.update({key: row for key, row in fresh.items() if row["wall_s"] is not None})
    rows = sorted([*known.values(), *(row for key, row in fresh.items() if key not in known)],
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
    """Every claim of the suites judged over the seeds in the records, with the paper's values beside ours."""
    from .scorecard import reference_run
    from .verdicts import compared_runs

    out = []
    for name in suite_names_:
        suite = load_suite(name)
        seed_rows: dict[str, dict[int, dict]] = {c["name"]: {} for c in suite["changes"]}
        for r in (r for r in rows if r["suite"] == name):
            seed_rows[r["change"]][r["seed"]] = r
        paper = {c["name"]: (c.get("paper") or {}) for c in suite["changes"]}
        for claim in suite.get("claims", []):
            v = judge_over_seeds(claim, seed_rows, reference_run(suite), min_seeds, min_reference_seeds)
            runs = compared_runs(claim, list(seed_rows))
            out.append({"suite": name, "claim": claim["text"], "verdict": v.verdict, "effect": v.effect,
                        "low": v.low, "high": v.high, "spread": v.spread, "evidence": v.evidence,
                        "paper": _paper_values(runs, paper), "ours": _our_values(runs, seed_rows)})
    return out


def _paper_values(runs: list[str], paper: dict[str, dict]) -> str:
    def one(name):
        p = paper.get(name, {})
        value = p.get("sink_1", p.get("sink_2", p.get("sink_3")))
        return f"{name} {value:g}" + (f" (Sink* {p['sink_star']:g})" if "sink_star" in p else "") if value is not None \
            else f"{name} -"
    return ", ".join(one(n) for n in runs)


def _our_values(runs: list[str], seed_rows: dict[str, dict[int, dict]]) -> str:
    def one(name):
        v = [r["sink_1"] for r in seed_rows.get(name, {}).values() if r.get("sink_1") is not None]
        if not v:
            return f"{name} -"
        return f"{name} {sum(v) / len(v):.2f} [{min(v):.2f}, {max(v):.2f}] (n={len(v)})"
    return ", ".join(one(n) for n in runs)


def claims_markdown(verdicts: list[dict], command: str) -> str:
    """One table of every claim: the paper's Sink_1 (%), ours as mean [min, max] over seeds, the verdict."""
    lines = ["| suite | claim | paper Sink_1 % | ours: Sink_1 % mean [range] over seeds | verdict "
             "| effect [interval] |", "|---|---|---|---|---|---|"]
    for v in verdicts:
        effect = "" if v["effect"] is None else f"{v['effect']:+.2f} [{v['low']:+.2f}, {v['high']:+.2f}]"
        lines.append(f"| {v['suite']} | {v['claim']} | {v['paper']} | {v['ours']} | {v['verdict']} | {effect} |")
    return "\n".join(lines + ["", f"Command: `{command}`", ""])
