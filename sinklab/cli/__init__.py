"""The `sinklab` command. One module per subcommand, each a thin shell over the package's API: its
parser (`add_<command>`) and its `cmd_<command>` function. measure.py, zoo.py, data.py, train.py,
report.py, stream.py, sweep.py (sweep and scorecard) and study.py; common.py holds what they share.
torch and transformers are imported inside the `cmd_*` functions only, so `sinklab --help` stays fast."""
from __future__ import annotations

import argparse

from .common import _Parser, _run
from .data import add_data
from .measure import add_measure
from .report import add_report
from .stream import add_stream
from .study import add_study
from .sweep import add_sweep
from .train import add_train
from .zoo import add_zoo

COMMANDS = (add_measure, add_zoo, add_data, add_train, add_report, add_stream, add_sweep, add_study)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sinklab", description="Measure, explain, cause, remove and use attention sinks.")
    parser.add_argument("--version", action="version", version=f"sinklab {__import__('sinklab').__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return _run(args.func, args)
