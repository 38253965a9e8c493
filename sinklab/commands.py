"""Subcommands beyond `measure`: data, train, report. Each adds one subparser to the CLI."""
from __future__ import annotations


def _data(sub):
    p = sub.add_parser("data", help="prepare token shards for training")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    prep = dsub.add_parser("prepare", help="tokenise text files, globs, .jsonl or an HF dataset into shards")
    prep.add_argument("inputs", nargs="+", help="files, globs (quote them), .jsonl, or an HF dataset path/name")
    prep.add_argument("--out", required=True, help="output folder for train.bin, val.bin, manifest.json")
    prep.add_argument("--tokenizer", default="bytes", help="bytes | bpe:N | tokenizer.json | model.gguf (default: bytes)")
    prep.add_argument("--val-fraction", type=float, default=0.01)
    prep.add_argument("--max-chars", type=int, default=None, help="stop reading documents after this many characters")
    prep.add_argument("--text-field", default="text", help="field of .jsonl rows / dataset rows (default: text)")
    prep.set_defaults(func=cmd_data_prepare)
    syn = dsub.add_parser("synthetic", help="write the Bigram-Backcopy corpus (sinks form within minutes on a CPU)")
    syn.add_argument("--out", required=True)
    syn.add_argument("--tokens", type=int, default=2_000_000)
    syn.add_argument("--vocab", type=int, default=64)
    syn.add_argument("--seq-len", type=int, default=256)
    syn.set_defaults(func=cmd_data_synthetic)


def cmd_data_prepare(args):
    from .data.shards import prepare

    if not 0 < args.val_fraction < 0.5:
        from .errors import SinklabError
        raise SinklabError("--val-fraction must lie in (0, 0.5)")
    m = prepare(args.inputs, args.out, args.tokenizer, args.val_fraction, args.text_field, max_chars=args.max_chars)
    print(f"{m['documents']} documents -> {m['tokens']['train']:,} train + {m['tokens']['val']:,} val tokens "
          f"({m['tokenizer']}, vocabulary {m['vocab_size']}) in {args.out}")


def cmd_data_synthetic(args):
    from .data.synthetic import write

    m = write(args.out, args.tokens, args.vocab, args.seq_len)
    print(f"Bigram-Backcopy: {m['tokens']['train']:,} train tokens, vocabulary {m['vocab_size']}, in {args.out}")


def _train(sub):
    p = sub.add_parser("train", help="pre-train a sinklab model and track Sink against step",
                       description="Train CONFIG (a preset: tiny, quick-60m, paper-60m, paper-1b; or a YAML file) "
                                   "with key=value overrides, e.g. train.data=shards/ model.score=sigmoid. "
                                   "Use torchrun for several GPUs.")
    p.add_argument("config", help="preset name or YAML/JSON file")
    p.add_argument("overrides", nargs="*", help="key=value (model.X, train.X, or a bare field name)")
    p.add_argument("--resume", action="store_true", help="continue from the last complete checkpoint in train.out")
    p.set_defaults(func=cmd_train)


def cmd_train(args):
    from .train.loop import parse_overrides, resolve_configs, train

    mc, tc = resolve_configs(args.config, parse_overrides(args.overrides))
    row = train(mc, tc, resume=args.resume)
    if row:
        print("final: " + ", ".join(f"{k}={v}" for k, v in row.items() if k in ("step", "loss", "val_loss", "sink_1")))
    from .report.training import report_run

    print(f"report: {report_run(tc.out)}")


def _report(sub):
    p = sub.add_parser("report", help="plot Sink_1 and loss against step for a training run")
    p.add_argument("run", help="training run folder (with metrics.jsonl)")
    p.set_defaults(func=lambda a: print(f"report: {__import__('sinklab.report.training', fromlist=['x']).report_run(a.run)}"))


REGISTRY = [_data, _train, _report]
