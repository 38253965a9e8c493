"""`sinklab data prepare` and `sinklab data synthetic`: token shards for training (sinklab.data)."""
from __future__ import annotations


def add_data(sub) -> None:
    p = sub.add_parser("data", help="prepare token shards for training")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    prep = dsub.add_parser("prepare", help="tokenise text files, globs, .jsonl or an HF dataset into shards")
    prep.add_argument("inputs", nargs="+", help="files, globs (quote them), .jsonl, or an HF dataset path/name")
    prep.add_argument("--out", required=True, help="output folder for train.bin, val.bin, manifest.json")
    prep.add_argument("--tokenizer", default="bytes",
                      help="bytes | bpe:N | tokenizer.json | model.gguf (default: bytes)")
    prep.add_argument("--val-fraction", type=float, default=0.01, help="share held out, in (0, 0.5) (default: 0.01)")
    prep.add_argument("--shard-dtype", default=None, choices=["uint8", "uint16", "uint32"],
                      help="token dtype (default: the smallest that holds the vocabulary)")
    prep.add_argument("--max-chars", type=int, default=None, help="stop reading documents after this many characters")
    prep.add_argument("--text-field", default="text", help="field of .jsonl rows / dataset rows (default: text)")
    prep.add_argument("--encoding-errors", default="strict", choices=["strict", "replace"],
                      help="a file that is not UTF-8: stop with its name and byte offset (strict), or read it "
                           "with replacement characters (default: strict)")
    prep.add_argument("--overwrite", action="store_true", help="replace data already prepared in --out")
    prep.set_defaults(func=cmd_data_prepare)
    syn = dsub.add_parser("synthetic", help="write the Bigram-Backcopy corpus (sinks form within minutes on a CPU)")
    syn.add_argument("--out", required=True, help="output folder for train.bin, val.bin, manifest.json")
    syn.add_argument("--tokens", type=int, default=2_000_000,
                     help="training tokens, at least --seq-len (default: 2000000)")
    syn.add_argument("--vocab", type=int, default=64, help="vocabulary size, 5..65536 (default: 64)")
    syn.add_argument("--seq-len", type=int, default=256, help="sequence length, at least 3 (default: 256)")
    syn.add_argument("--overwrite", action="store_true", help="replace data already prepared in --out")
    syn.set_defaults(func=cmd_data_synthetic)


def cmd_data_prepare(args):
    from ..data.shards import prepare

    m = prepare(args.inputs, args.out, args.tokenizer, args.val_fraction, args.text_field, max_chars=args.max_chars,
                dtype=args.shard_dtype, encoding_errors=args.encoding_errors, overwrite=args.overwrite)
    print(f"{m['documents']} documents -> {m['tokens']['train']:,} train + {m['tokens']['val']:,} val tokens "
          f"({m['tokenizer']}, vocabulary {m['vocab_size']}) in {args.out}")


def cmd_data_synthetic(args):
    from ..data.synthetic import write

    m = write(args.out, args.tokens, args.vocab, args.seq_len, overwrite=args.overwrite)
    print(f"Bigram-Backcopy: {m['tokens']['train']:,} train tokens, vocabulary {m['vocab_size']}, in {args.out}")
