"""`sinklab sweep --launcher submitit`: each run is one job of a cluster, submitted through submitit
(SLURM, or its local executor on this machine), with the local runner's rules: finished runs are
skipped, unfinished ones resubmitted (they resume from their checkpoint), failures named by run.

Each job decides at its own start whether to resume or start afresh, so a job SLURM requeues
(preemption, node failure) resumes too. `RUN/submitit_job.json` names the job that holds a run; a
rerun while that job is still queued or running leaves the run to it instead of training it twice.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import submitit

from ..errors import SinklabError
from .runs import SweepRun, run_state, train_command

JOB_FILE = "submitit_job.json"
LIVE_SLURM_STATES = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED"}


@dataclass
class ClusterOptions:
    cluster: str | None = None       # None: SLURM where sbatch exists, else this machine; or "slurm" / "local"
    partition: str | None = None
    timeout_min: int = 1440
    gpus_per_run: int = 1            # one GPU per run; with torchrun, the GPUs of one node
    cpus_per_task: int | None = None
    torchrun: int = 0


class TrainJob(submitit.helpers.Checkpointable):
    """One run as a job; on preemption submitit requeues it as it is (Checkpointable), and it resumes."""

    def __init__(self, run: SweepRun, torchrun: int = 0):
        self.run, self.torchrun = run, torchrun

    def __call__(self) -> str:
        record_job(self.run.folder, submitit.JobEnvironment().job_id, pid=os.getpid())
        if self.torchrun:  # one node, its GPUs under torchrun
            cmd = train_command(self.run)
            cmd = [cmd[0], "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={self.torchrun}",
                   "-m", "sinklab.cli", *cmd[3:]]
            subprocess.run(cmd, check=True, env=dict(os.environ, SINKLAB_NO_PROGRESS="1"))
        else:
            self._train_here()
        return run_state(self.run)

    def _train_here(self) -> None:
        from ..report import write_results
        from ..train.config import resolve_configs
        from ..train.loop import train

        mc, tc = resolve_configs(self.run.preset, {**self.run.overrides, "train.out": str(self.run.folder)})
        partial = run_state(self.run) == "partial"
        print(f"{'resuming' if partial else 'starting'} {self.run.folder}", flush=True)  # the job log says which
        train(mc, tc, resume=partial, overwrite=not partial, progress=False, final_report=write_results)


def record_job(folder: Path, job_id: str, pid: int | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    record = {"job_id": str(job_id), "host": socket.gethostname(), "pid": pid}
    (folder / JOB_FILE).write_text(json.dumps(record))


def holding_job(run: SweepRun, folder: Path) -> str | None:
    """The job id of a job still queued or running this run, else None."""
    try:
        record = json.loads((run.folder / JOB_FILE).read_text())
    except (OSError, ValueError):
        return None
    pid = record.get("pid")
    if pid and record.get("host") == socket.gethostname() and _alive(int(pid)):
        return record["job_id"]
    if not record.get("job_id", "").isdigit() or pid and record.get("host") == socket.gethostname():
        return None
    try:
        state = submitit.SlurmJob(folder=folder, job_id=record["job_id"]).state
    except Exception:  # no sacct here (a local run's record): nothing holds the run
        return None
    return record["job_id"] if state.split()[0] in LIVE_SLURM_STATES else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie or a reused pid is not the job
        status = Path(f"/proc/{pid}/status").read_text()
        return "State:\tZ" not in status
    except OSError:
        return True


def executor_for(folder: Path, options: ClusterOptions):
    executor = submitit.AutoExecutor(folder=folder, cluster=options.cluster)
    params = dict(timeout_min=options.timeout_min, nodes=1, tasks_per_node=1,
                  gpus_per_node=max(options.gpus_per_run, options.torchrun))
    if options.cpus_per_task:
        params["cpus_per_task"] = options.cpus_per_task
    if options.partition:
        params["slurm_partition"] = options.partition
    executor.update_parameters(**params)
    return executor


def submit_runs(todo: list[SweepRun], out: Path, options: ClusterOptions) -> None:
    """Submit every run no live job holds, wait for them, and name each one that failed."""
    folder = out / "submitit"
    executor = executor_for(folder, options)
    jobs = []
    for r in todo:
        held = holding_job(r, folder)
        if held:
            print(f"{r.suite}/{r.change}: still held by job {held}; left to it", flush=True)
            continue
        executor.update_parameters(name=f"sinklab-{r.change}")
        job = executor.submit(TrainJob(r, options.torchrun))
        record_job(r.folder, job.job_id)
        print(f"job {job.job_id}: {r.suite}/{r.change} -> {r.folder}", flush=True)
        jobs.append((r, job))
    failed = []
    for r, job in jobs:
        try:
            job.result()
        except Exception as e:  # a job killed, cancelled or raising: named, and the others still waited for
            reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            failed.append(f"{r.change} (job {job.job_id}: {reason}; see {job.paths.stderr})")
    if failed:
        raise SinklabError("runs failed: " + "; ".join(failed) + " (rerun the command to resume them)")
