"""`sinklab zoo`: every causal-LM type of the installed transformers, tiny and random, measured against
eager attention (sinklab.measure.zoo), and the coverage table written."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import SinklabError
from ..files import check_output_folder, output_folder


def add_zoo(sub) -> None:
    z = sub.add_parser("zoo", help="measure every causal-LM type of the installed transformers, tiny and random, "
                                   "against eager attention, and write the coverage table")
    z.add_argument("--types", default=None, help="comma-separated model types (default: all)")
    z.add_argument("--sharpened", action="store_true", help="also run with query/key weights x16 and softcaps at 3")
    z.add_argument("--out", default="docs/architectures.md", help="the table (default: docs/architectures.md)")
    z.set_defaults(func=cmd_zoo)


def cmd_zoo(args) -> int:
    """Build every causal-LM type of the installed transformers tiny, measure it, write the table."""
    from ..measure import zoo
    from ..measure.run import library_versions

    out = Path(args.out)
    check_output_folder(out.parent)
    types = args.types.split(",") if args.types else zoo.causal_lm_types()
    unknown = sorted(set(types) - set(zoo.causal_lm_types()))
    if unknown:
        raise SinklabError(f"--types: {unknown[0]!r} is not a causal-LM model type of the installed transformers")
    show = lambda r: print(f"{r.model_type:<28} {r.status:<14} {r.detail[:90]}", file=sys.stderr, flush=True)
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
