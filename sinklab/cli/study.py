"""`sinklab study`: every suite's runs at a preset with seeds, in pieces that stop at a deadline, then each
claim judged over seeds (sinklab.experiments.study)."""
from __future__ import annotations

import math
import shlex
from pathlib import Path

from ..errors import SinklabError
from ..files import check_output_folder
from .common import PRESET_NAMES, STOPPED_EXIT, _check_sweep_args, _suites_arg


def add_study(sub) -> None:
    p = sub.add_parser("study", help="every suite's runs at a preset with seeds, in pieces that stop at a deadline; "
                                     "then each claim judged over seeds",
                       description="Train every change of SUITES (default: all) with --seeds seeds and each suite's "
                                   "baseline with --reference-seeds, --per-gpu runs at once on each GPU. At --deadline "
                                   "every active run stops after its step with a checkpoint; rerunning the command "
                                   "skips finished runs and resumes the rest. Records are rebuilt as runs finish.")
    p.add_argument("suites", nargs="?", default="all", help="suite name(s), comma-separated, or all (default)")
    p.add_argument("--preset", default="faithful-60m", help=f"one of {PRESET_NAMES} (default: faithful-60m)")
    p.add_argument("--data", help="token shards from `sinklab data prepare`")
    p.add_argument("--out", default="runs/study", help="the runs' folder (default: runs/study)")
    p.add_argument("--records", default=None, help="the records file (default: OUT/PRESET/study.jsonl)")
    p.add_argument("--seeds", type=int, default=2, help="seeds per change (default: 2)")
    p.add_argument("--reference-seeds", type=int, default=3, help="seeds of each suite's baseline (default: 3)")
    p.add_argument("--deadline", type=float, default=None,
                   help="seconds until active runs are stopped with a checkpoint (default: no deadline)")
    p.add_argument("--per-gpu", type=int, default=1, help="runs at once on each GPU, or CPU processes (default: 1)")
    p.add_argument("--gpus", type=int, default=None, help="GPUs to use (default: all visible)")
    p.add_argument("--set", nargs="*", default=[], help="extra key=value overrides for every run")
    p.set_defaults(func=cmd_study)


def study_command(args) -> str:
    """The command that reruns (and resumes) this study: what the claims table cites."""
    words = ["sinklab", "study", args.suites, "--preset", args.preset, "--data", args.data, "--out", args.out,
             "--seeds", str(args.seeds), "--reference-seeds", str(args.reference_seeds), "--per-gpu", str(args.per_gpu)]
    words += ["--records", args.records] if args.records else []
    words += ["--deadline", f"{args.deadline:g}"] if args.deadline is not None else []
    return shlex.join(words + (["--set", *args.set] if args.set else []))


def cmd_study(args):
    from ..experiments.study import claim_verdicts, claims_markdown, plan_study, run_study, slots_for, write_records
    from ..train.config import parse_overrides

    if not args.data:
        raise SinklabError("study needs --data (token shards from `sinklab data prepare`)")
    if args.deadline is not None and not args.deadline > 0:
        raise SinklabError(f"--deadline must be a positive number of seconds (got {args.deadline:g})")
    _check_sweep_args(args)
    from ..data.shards import open_split

    open_split(args.data, "train")  # a bad --data is one error before the first run
    records = Path(args.records) if args.records else Path(args.out) / args.preset / "study.jsonl"
    _check_study_outputs(Path(args.out), records)
    suites = _suites_arg(args.suites)
    runs = plan_study(suites, args.preset, Path(args.out), args.data, args.seeds, args.reference_seeds,
                      parse_overrides(args.set))
    piece = run_study(runs, math.inf if args.deadline is None else args.deadline,
                      slots_for(runs, args.per_gpu, args.gpus), records)
    rows = write_records(runs, records, piece.rows)
    verdicts = claim_verdicts(rows, suites, min(args.seeds, 2), min(args.reference_seeds, 3))
    for v in verdicts:
        print(f"{v['suite']}: {v['claim']}: {v['verdict']} ({v['evidence']})")
    table = records.with_suffix(".claims.md")
    table.write_text(claims_markdown(verdicts, study_command(args)), encoding="utf-8")
    print(f"claims: {table}")
    print(f"records: {records} ({len(rows)} finished runs); this piece finished {len(piece.finished)}, "
          f"stopped {len(piece.stopped)}, {piece.remaining} not started")
    if piece.failed:
        raise SinklabError("runs failed: " + "; ".join(piece.failed))
    if not piece.complete:
        print("not complete: rerun the same command to go on")
        return STOPPED_EXIT
    return 0


def _check_study_outputs(out, records) -> None:
    """--out and --records can be written, before the first run (the records file is rebuilt from the runs)."""
    check_output_folder(out, "--out")
    if records.is_dir():
        raise SinklabError(f"--records {records} is a folder; give a file (e.g. {records / 'study.jsonl'})")
    check_output_folder(records.parent, "--records")
