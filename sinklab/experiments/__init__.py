"""The paper's findings as suites (data files), a sweep runner and a scorecard against the published numbers.

A suite is a base plus a list of changes; each change is a few model/train overrides with the
paper's value and the table it comes from. Runs are keyed by preset and by a hash of the resolved
config, so identical runs (every suite's baseline) are trained once, and results of different
presets never meet in one scorecard row.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import yaml

from ..errors import SinklabError
from .runs import SweepRun, run_state, train_command


def suite_names() -> list[str]:
    folder = resources.files("sinklab.experiments.suites")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_suite(name: str) -> dict:
    names = suite_names()
    if name not in names:
        raise SinklabError(f"unknown suite {name!r}: use one of {', '.join(names)} or all")
    return yaml.safe_load(resources.files("sinklab.experiments.suites").joinpath(f"{name}.yaml").read_text())


def _flatten(section: str, d: dict | None) -> dict:
    return {f"{section}.{k}": v for k, v in (d or {}).items()}


def plan_runs(suite_names_: list[str], preset: str, out: Path, data: str, only: list[str] | None = None,
              extra: dict | None = None) -> list[SweepRun]:
    """Every run of the suites, each with its resolved config and a folder keyed by preset and config hash."""
    from ..train.config import resolve_configs

    runs = []
    for name in suite_names_:
        suite = load_suite(name)
        # a suite's base (e.g. the 1B shape) scales the model; the CPU-sized `tiny` preset keeps its own shape
        base_src = {} if preset == "tiny" else (suite.get("base") or {})
        base = {**_flatten("model", base_src.get("model")), **_flatten("train", base_src.get("train"))}
        for ch in suite["changes"]:
            if only and ch["name"] not in only:
                continue
            ov = {**base, **_flatten("model", ch.get("model")), **_flatten("train", ch.get("train")),
                  "train.data": data, **(extra or {})}
            mc, tc = resolve_configs(preset, ov)
            key = config_key(mc, tc)
            folder = out / preset / f"{ch['name']}-{key}"
            runs.append(SweepRun(name, ch["name"], ov, ch.get("paper") or {}, ch.get("setting"), folder, preset))
    if only and not runs:
        raise SinklabError(f"--only {','.join(only)} matches no change of {', '.join(suite_names_)}")
    return runs


def config_key(mc, tc) -> str:
    """A hash of what differs from the defaults, so a new config field (with a default that keeps
    the old behaviour) leaves the keys, and the finished runs they name, as they were."""
    def changed(cfg, skip=()):
        default = dataclasses.asdict(type(cfg)())
        return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in skip and default.get(k) != v}

    # how a step is split (micro-batches, GPUs) leaves its sequences and its update as they are
    resolved = {"model": changed(mc), "train": changed(tc, ("out", "data", "micro_batch"))}
    return hashlib.sha1(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _unique(runs: list[SweepRun]) -> list[SweepRun]:
    seen, out = set(), []
    for r in runs:
        if r.folder not in seen:
            seen.add(r.folder)
            out.append(r)
    return out


LAUNCHERS = ("local", "submitit")


def sweep(suite_names_: list[str], preset: str, out: str, data: str, only=None, gpus: int | None = None,
          torchrun: int = 0, extra: dict | None = None, progress: bool = True, launcher: str = "local",
          cluster=None) -> list[SweepRun]:
    """Run what is missing: skip finished runs, resume interrupted ones, one run per GPU if several.
    launcher="submitit": one cluster job per run instead (`cluster`: launch.ClusterOptions)."""
    import torch

    from ..report import write_results
    from ..train.config import resolve_configs
    from ..train.loop import train

    from ..data.shards import open_split

    if launcher not in LAUNCHERS:
        raise SinklabError(f"unknown --launcher {launcher!r}: use one of {', '.join(LAUNCHERS)}")
    open_split(data, "train")  # a bad --data is one error before the first run, not after it
    runs = plan_runs(suite_names_, preset, Path(out), data, only, extra)  # every config validated here
    todo = [r for r in _unique(runs) if run_state(r) != "done"]
    print(f"{len(_unique(runs))} distinct runs in {', '.join(suite_names_)} at preset {preset}: "
          f"{len(_unique(runs)) - len(todo)} done, {len(todo)} to run")
    n_gpus = torch.cuda.device_count() if gpus is None else gpus
    if launcher == "submitit":
        from .launch import ClusterOptions, submit_runs

        submit_runs(todo, Path(out), cluster or ClusterOptions(torchrun=torchrun))
    elif torchrun or n_gpus > 1:
        _run_parallel(todo, preset, n_gpus, torchrun, unit=_parallel_unit(todo, preset, n_gpus, torchrun))
    else:
        for i, r in enumerate(todo, 1):
            print(f"[{i}/{len(todo)}] {r.suite}/{r.change} -> {r.folder}")
            mc, tc = resolve_configs(preset, {**r.overrides, "train.out": str(r.folder)})
            partial = run_state(r) == "partial"
            train(mc, tc, resume=partial, overwrite=not partial, progress=progress, final_report=write_results)
    return runs


def _parallel_unit(todo: list[SweepRun], preset: str, n_gpus: int, torchrun: int) -> str:
    """What a slot of a parallel sweep is: a GPU, or a CPU process where every run trains on the CPU
    (train.device=cpu). Asking for more GPUs than PyTorch sees is refused before the first run."""
    import torch

    from ..train.config import resolve_configs

    if todo and all(resolve_configs(preset, r.overrides)[1].device == "cpu" for r in todo):
        return "CPU process"
    wanted, seen = max(n_gpus, torchrun), torch.cuda.device_count()
    if wanted > seen:
        asked = f"--torchrun {torchrun}" if torchrun > n_gpus else f"--gpus {n_gpus}"
        raise SinklabError(f"{asked}: PyTorch sees {seen} CUDA GPU(s); lower it, or train on CPU processes "
                           "with --set train.device=cpu")
    return "GPU"


def failure_reason(log: Path) -> str | None:
    """The line of a run's train.log that says why it failed: sinklab's own error, else the last
    exception or abort (a torchrun log holds every rank's output and the launcher's summary)."""
    try:
        lines = log.read_text(errors="replace").splitlines()[-400:]
    except OSError:
        return None
    for wanted in (r"sinklab: error: ", r"^\w[\w.]*(Error|Exception): ",
                   r"terminate called|Signal \d+ \(SIG\w+\) received"):
        found = [line.strip() for line in lines if re.search(wanted, line) and "ChildFailedError" not in line]
        if found:
            return found[-1][:300]
    return None


def _run_parallel(todo: list[SweepRun], preset: str, n_gpus: int, torchrun: int, unit: str = "GPU") -> None:
    """One subprocess per GPU (or per torchrun group), each taking the next pending run."""
    per = max(1, torchrun)
    slots = [list(range(i, i + per)) for i in range(0, max(n_gpus, per), per)][: max(1, n_gpus // per)]
    queue, active = list(todo), {}
    env_base = dict(os.environ, NCCL_NVLS_ENABLE="0", TORCH_SYMM_MEM_DISABLE_MULTICAST="1", NVSHMEM_DISABLE_NVLS="1")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")  # slots index the GPUs this process was given
    physical = visible.split(",") if visible else [str(i) for i in range(max(n_gpus, per))]
    failed = []
    while queue or active:
        for i, gpus in enumerate(slots):
            if i not in active and queue:
                r = queue.pop(0)
                r.folder.mkdir(parents=True, exist_ok=True)
                cmd = train_command(r)
                if torchrun:
                    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={per}",
                           "-m", "sinklab.cli", *cmd[3:]]
                env = dict(env_base, CUDA_VISIBLE_DEVICES=",".join(physical[g] for g in gpus), SINKLAB_NO_PROGRESS="1")
                log = open(r.folder / "train.log", "a")
                active[i] = (r, subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT), log)
                plural = "" if len(gpus) == 1 else "es" if unit.endswith("s") else "s"
                print(f"{unit}{plural} {','.join(map(str, gpus))}: {r.suite}/{r.change}", flush=True)
        for i, (r, p, log) in list(active.items()):
            if p.poll() is not None:
                log.close()
                if p.returncode != 0:
                    reason = failure_reason(r.folder / "train.log")
                    failed.append(f"{r.change} (exit {p.returncode}{': ' + reason if reason else ''}; "
                                  f"log {r.folder / 'train.log'})")
                del active[i]
        time.sleep(1)
    if failed:
        raise SinklabError("runs failed: " + "; ".join(failed))

