"""`sinklab sweep` and `sinklab scorecard`: a suite of the paper's experiments run (sinklab.experiments.sweep),
then compared with the paper's published numbers (sinklab.experiments.scorecard)."""
from __future__ import annotations

import importlib.util
import shlex

from ..errors import SinklabError
from ..experiments import load_suite, suite_names, sweep
from .common import PRESET_NAMES, _check_sweep_args, _suites_arg


def add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="run a suite of the paper's experiments (skips finished runs, resumes the rest)",
                       description="Run SUITE (or all) at a preset. Finished runs are skipped and interrupted ones "
                                   "resumed, so rerunning the same command completes only what is missing.")
    p.add_argument("suite", help="suite name(s), comma-separated, or all (see `sinklab sweep --list`)", nargs="?")
    p.add_argument("--list", action="store_true", help="list the suites and exit")
    p.add_argument("--preset", default="quick-60m", help=f"one of {PRESET_NAMES} (default: quick-60m)")
    p.add_argument("--data", help="token shards from `sinklab data prepare`")
    p.add_argument("--out", default="runs/sweeps")
    p.add_argument("--only", default=None, help="comma-separated change names")
    p.add_argument("--gpus", type=int, default=None, help="parallel runs, one per GPU (default: all visible)")
    p.add_argument("--torchrun", type=int, default=0, help="GPUs per run through torchrun (default: 0 = one process)")
    p.add_argument("--set", nargs="*", default=[],
                   help="extra key=value overrides for every run (e.g. train.steps=1000)")
    _cluster_args(p)
    p.set_defaults(func=cmd_sweep)
    s = sub.add_parser("scorecard", help="compare a suite's runs with the paper's published numbers")
    s.add_argument("suite", help="suite name(s), comma-separated, or all")
    s.add_argument("--preset", default="quick-60m")
    s.add_argument("--out", default="runs/sweeps")
    s.add_argument("--set", nargs="*", default=[], help="the same extra overrides the sweep used")
    s.set_defaults(func=cmd_scorecard)


def _cluster_args(p) -> None:
    """--launcher, and what `--launcher submitit` asks of the cluster."""
    p.add_argument("--launcher", choices=("local", "submitit"), default="local",
                   help="local: this host's GPUs (default); submitit: one cluster job per run (pip install submitit)")
    p.add_argument("--cluster", choices=("auto", "slurm", "local"), default="auto",
                   help="--launcher submitit: SLURM, or jobs on this machine (auto: SLURM where sbatch exists)")
    p.add_argument("--slurm-partition", default=None, help="--launcher submitit: the SLURM partition")
    p.add_argument("--slurm-time", type=int, default=1440, help="--launcher submitit: minutes a job may run")
    p.add_argument("--slurm-cpus", type=int, default=None, help="--launcher submitit: CPUs per job")
    p.add_argument("--slurm-gpus", type=int, default=1,
                   help="--launcher submitit: GPUs per job (with --torchrun N, the job's node gets N)")


def cmd_sweep(args):
    if args.list or not args.suite:
        for n in suite_names():
            s = load_suite(n)
            print(f"{n:<20} {len(s['changes'])} changes  {s['title']}")
        return 0
    if not args.data:
        raise SinklabError("sweep needs --data (token shards from `sinklab data prepare`)")
    _check_sweep_args(args)
    from ..train.config import parse_overrides

    sweep(_suites_arg(args.suite), args.preset, args.out, args.data,
          only=args.only.split(",") if args.only else None, gpus=args.gpus, torchrun=args.torchrun,
          extra=parse_overrides(args.set), launcher=args.launcher, cluster=_cluster_options(args))
    print(f"done; `{scorecard_command(args)}` compares with the paper")
    return 0


def _cluster_options(args):
    """What `--launcher submitit` asks of the cluster (None for the local launcher)."""
    if args.launcher != "submitit":
        return None
    if importlib.util.find_spec("submitit") is None:
        raise SinklabError("--launcher submitit needs the submitit package: pip install 'sinklab[integrations]'")
    from ..experiments.launch import ClusterOptions  # imports submitit

    return ClusterOptions(cluster=None if args.cluster == "auto" else args.cluster, partition=args.slurm_partition,
                          timeout_min=args.slurm_time, gpus_per_run=args.slurm_gpus, cpus_per_task=args.slurm_cpus,
                          torchrun=args.torchrun)


def scorecard_command(args) -> str:
    """The scorecard command for a sweep's runs: the same suites, preset, folder and overrides (the
    overrides are part of each run's folder name, so without them the scorecard finds no run)."""
    words = ["sinklab", "scorecard", args.suite, "--preset", args.preset, "--out", args.out]
    return shlex.join(words + (["--set", *args.set] if args.set else []))


def cmd_scorecard(args):
    from ..experiments.scorecard import scorecard, scorecard_markdown
    from ..train.config import parse_overrides

    _check_sweep_args(args)

    result = scorecard(_suites_arg(args.suite), args.preset, args.out, extra=parse_overrides(args.set))
    print(scorecard_markdown(result))
    print(f"\nscorecard: {result['folder']}/scorecard.html, scorecard.csv, claims.csv")
    return 0
