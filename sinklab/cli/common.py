"""What the subcommands share: the parser class, the one-line error, the presets and suites arguments,
and the sweep options' checks. Light: nothing here imports torch, so `sinklab --help` stays fast."""
from __future__ import annotations

import argparse
import sys

from ..config import PRESETS
from ..errors import SinklabError
from ..experiments import suite_names

PRESET_NAMES = ", ".join(PRESETS)
STOPPED_EXIT = 3  # `sinklab train` stopped on request before its last step, with a checkpoint to resume


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr (exit 2), not a usage dump."""

    def error(self, message: str):
        self.exit(2, f"sinklab: error: {message} (see `{self.prog} --help`)\n")


def _run(func, args) -> int:
    """A subcommand's exit code; a SinklabError is one `sinklab: error:` line on stderr (exit 2)."""
    try:
        return int(func(args) or 0)
    except SinklabError as e:
        print(f"sinklab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sinklab: interrupted; results written so far are kept", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        sys.stderr.close()
        return 0


def _suites_arg(value: str) -> list[str]:
    return suite_names() if value == "all" else value.split(",")


def _check_sweep_args(args) -> None:
    if args.preset not in PRESETS:
        raise SinklabError(f"unknown --preset {args.preset!r}: use one of {', '.join(PRESETS)}")
    if getattr(args, "slurm_time", 1) < 1:
        raise SinklabError(f"--slurm-time must be at least 1 minute (got {args.slurm_time})")
    for name in ("gpus", "torchrun", "slurm_gpus", "slurm_cpus"):
        value = getattr(args, name, None)
        if value is not None and value < 0:
            raise SinklabError(f"--{name.replace('_', '-')} must be >= 0 (got {value})")
