"""`sinklab train`: pre-train a sinklab model and track Sink against step (sinklab.train.loop.train)."""
from __future__ import annotations

import dataclasses
import os

from ..config import CHOICES
from ..errors import SinklabError
from .common import PRESET_NAMES, STOPPED_EXIT
from .report import measure_and_report


def add_train(sub) -> None:
    p = sub.add_parser("train", help="pre-train a sinklab model and track Sink against step",
                       description=f"Train CONFIG (a preset: {PRESET_NAMES}; or a YAML file) "
                                   "with key=value overrides, e.g. train.data=shards/ model.score=sigmoid. "
                                   "The run goes to train.out (default: runs/CONFIG-HASH, the hash of the settings "
                                   "that shape the run). Use torchrun for several GPUs.")
    p.add_argument("config", nargs="?", help="preset name or YAML/JSON file")
    p.add_argument("overrides", nargs="*", help="key=value (model.X, train.X, or a bare field name)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in train.out from its newest checkpoint that loads")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run in train.out (without it, a folder that holds a run is refused)")
    p.add_argument("--fields", action="store_true",
                   help="list every model.X and train.X field with its default (of CONFIG, if given) "
                        "and allowed values")
    p.set_defaults(func=cmd_train)


def cmd_train(args):
    from ..report import write_results
    from ..train.config import parse_overrides, resolve_configs
    from ..train.loop import train

    if args.fields:
        return print_fields(*resolve_configs(args.config or "tiny", parse_overrides(args.overrides)))
    if not args.config:
        raise SinklabError(f"train needs CONFIG: a preset ({PRESET_NAMES}) or a YAML/JSON file")
    mc, tc = resolve_configs(args.config, parse_overrides(args.overrides))
    if os.environ.get("RANK", "0") == "0":
        print(f"run folder: {tc.out}")
    row = train(mc, tc, resume=args.resume, overwrite=args.overwrite, final_report=write_results)
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 speaks for the run
        return
    if "stopped_at" in row:
        print(f"stopped at step {row['stopped_at']} of {tc.steps} (SIGTERM), with a checkpoint: continue with "
              f"`sinklab train {args.config} ... --resume` (train.out={tc.out})")
        return STOPPED_EXIT
    if row:
        print("final: " + ", ".join(f"{k}={v}" for k, v in row.items() if k in ("step", "loss", "val_loss", "sink_1")))
    print(f"report: {measure_and_report(tc.out)}")


def print_fields(mc, tc) -> None:
    """Every config field, as `sinklab train --fields` shows it: name = value, and the allowed values."""
    from ..train.config import TRAIN_CHOICES

    for prefix, cfg, choices in (("model", mc, CHOICES), ("train", tc, TRAIN_CHOICES)):
        for f in dataclasses.fields(cfg):
            allowed = f"   ({' | '.join(choices[f.name])})" if f.name in choices else ""
            print(f"{prefix}.{f.name} = {getattr(cfg, f.name)!r}{allowed}")
