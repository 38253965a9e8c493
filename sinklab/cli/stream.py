"""`sinklab stream`: generate, or score a long text, with a sink + window KV cache (sinklab.stream).
The cache's sizes and the temperature are checked by sinklab.stream's own functions, before any model loads."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from ..errors import SinklabError
from ..files import claim_output_folder, read_text, staged_folder

STREAM_MARKER = "stream.json"  # a folder holding it holds a stream evaluation


def add_stream(sub) -> None:
    p = sub.add_parser("stream", help="generate or score a long text with a sink + window KV cache (StreamingLLM)",
                       description="Generate (--prompt) or measure perplexity over a long text (--eval FILE) with a "
                                   "bounded KV cache that keeps the first n_sink tokens plus a recent window. "
                                   "--eval scores one continuous stream token by token, as StreamingLLM does.")
    p.add_argument("--model", default=None,
                   help="HF id or folder, .gguf, or LLaMA-shaped sinklab checkpoint (default: SmolLM2)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--prompt", help="text to continue")
    g.add_argument("--eval", help="a long .txt (or .txt.xz) file to score token by token")
    # the groups below are added in the order --help lists them
    _cache_args(p)
    _keep_args(p)
    _eval_args(p)
    _generate_args(p)
    _run_args(p)
    p.set_defaults(func=cmd_stream)


def _cache_args(p) -> None:
    """What the bounded cache keeps: the sink tokens and the recent window."""
    p.add_argument("--n-sink", type=int, default=4, help="initial tokens kept (default: 4)")
    p.add_argument("--window", type=int, default=None,
                   help="recent tokens kept (default: --prompt 1020 or what the model's context holds; "
                        "--eval cache-size - n-sink)")
    p.add_argument("--cache-size", type=int, default=256,
                   help="--eval: tokens each policy's cache holds (default: 256)")
    p.add_argument("--sink-from-measure", default=None,
                   help="a `sinklab measure` results folder: keep tokens up to its largest-sink position")


def _eval_args(p) -> None:
    """--eval: how much text is scored, in how many streams, under which cache policies."""
    p.add_argument("--tokens", type=int, default=20000,
                   help="--eval: tokens scored, split over --streams (default: 20000)")
    p.add_argument("--streams", type=int, default=1,
                   help="--eval: cut the text into this many independent streams, run as one batch (default: 1)")
    p.add_argument("--recompute-stride", type=int, default=32,
                   help="--eval: score every k-th token by recomputation (default: 32)")
    p.add_argument("--policies", default="full,window,sink,recompute",
                   help="--eval: comma-separated, from full, window, sink, recompute, keep (default: the first "
                        "four; --keep-sink-tokens adds keep)")


def _generate_args(p) -> None:
    """--prompt: how much to generate and how to sample."""
    p.add_argument("--max-new-tokens", type=int, default=100, help="--prompt: tokens to generate (default: 100)")
    p.add_argument("--temperature", type=float, default=0.0,
                   help="--prompt: sampling temperature, 0 = greedy (default: 0)")


def _run_args(p) -> None:
    """Where and how the model runs, and where --eval writes its results."""
    p.add_argument("--decode", default="auto", choices=["auto", "eager", "graph", "compile"],
                   help="--eval: step loop; graph = one CUDA graph replayed per token, compile = torch.compile "
                        "(default: auto, graph on a GPU)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="weights and cache dtype (default: float32)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--out", default="results/stream",
                   help="--eval: folder for stream.json, stream.csv, running_ppl.png")
    p.add_argument("--encoding-errors", default="strict", choices=["strict", "replace"],
                   help="--eval: a file that is not UTF-8: stop with its byte offset (strict), or read it with "
                        "replacement characters (default: strict)")
    p.add_argument("--overwrite", action="store_true", help="--eval: replace results already in --out")


def _keep_args(p) -> None:
    p.add_argument("--keep-sink-tokens", default=None, metavar="SOURCE",
                   help="--eval: also score policy 'keep': the sink cache keeps evicted tokens of these ids in "
                        "--keep-slots slots of the same cache size; SOURCE is a `sinklab measure` folder (its "
                        "sink_tokens.csv's named later tokens) or comma-separated token ids")
    p.add_argument("--keep-slots", type=int, default=4,
                   help="with --keep-sink-tokens: cache slots for kept tokens, taken from the window (default: 4)")


def cmd_stream(args):
    from .. import stream
    from ..load import load_model

    n_sink = _sinks_from_measure(args.sink_from_measure) if args.sink_from_measure else args.n_sink
    sizes = _check_stream_args(args, n_sink)
    keep_ids = _keep_ids(args, n_sink)
    policies = _policies(args, keep_ids)
    text = args.prompt if args.prompt is not None else _eval_text(args.eval, args.encoding_errors)
    if args.eval is not None:  # before the model loads and the text is scored
        claim_output_folder(args.out, STREAM_MARKER, args.overwrite)
    loaded = load_model(args.model, device=args.device, dtype=args.dtype, capture=False)  # it only runs the model
    sm = stream.prepare_stream(loaded)
    if args.prompt is not None:
        window = args.window if args.window is not None else stream.default_window(sm.model, n_sink)
        print(stream.generate(sm, text, args.max_new_tokens, n_sink, window, args.temperature))
        return 0
    tok = loaded.tokenizer
    if tok is None or tok.encode is None:
        raise SinklabError(f"{loaded.name} has no tokenizer; streaming text needs one")
    window, cache_size = sizes
    stream.check_sizes(sm.model, n_sink, window)
    ids = tok.encode(text)
    per = args.tokens // args.streams
    if len(ids) < per * args.streams:
        raise SinklabError(f"--eval needs {per * args.streams} tokens and {args.eval} has {len(ids)}; lower --tokens")
    import torch

    batch = torch.tensor(ids[: per * args.streams]).view(args.streams, per)
    result = stream.perplexity(sm, batch, cache_size, n_sink, policies, args.recompute_stride, decode=args.decode,
                               keep_ids=keep_ids, keep_slots=args.keep_slots)
    _write_stream_results(args, loaded.name, result, n_sink, per)
    return 0


def _check_stream_args(args, n_sink: int) -> tuple[int, int] | None:
    """Check the numeric options before loading anything; returns --eval's (window, cache size)."""
    from ..stream import OPTION_NAMES, cache_sizes, check_temperature

    checks = [("--n-sink", n_sink, 0), ("--cache-size", args.cache_size, 1), ("--tokens", args.tokens, 2),
              ("--streams", args.streams, 1), ("--recompute-stride", args.recompute_stride, 1),
              ("--max-new-tokens", args.max_new_tokens, 1)]
    for flag, value, low in checks:
        if value < low:
            raise SinklabError(f"{flag} must be at least {low} (got {value})")
    if args.window is not None and args.window < 1:
        raise SinklabError(f"--window must be at least 1 (got {args.window})")
    check_temperature(args.temperature, "--temperature")
    if args.eval is None:
        return None
    sizes = cache_sizes(args.cache_size, n_sink, args.window, names=OPTION_NAMES)
    if args.tokens // args.streams < 2:
        raise SinklabError(f"--tokens {args.tokens} over {args.streams} streams leaves fewer than 2 tokens a stream")
    return sizes


def _policies(args, keep_ids) -> list[str]:
    """--policies, with keep added when --keep-sink-tokens names tokens; each known and named once."""
    from ..stream import POLICIES

    policies = [p for p in args.policies.split(",") if p] + (["keep"] if keep_ids else [])
    policies = list(dict.fromkeys(policies))
    if "keep" in policies and not keep_ids:
        raise SinklabError("policy 'keep' needs --keep-sink-tokens (the token ids to keep)")
    bad = [p for p in policies if p not in POLICIES]
    if bad or not policies:
        raise SinklabError(f"unknown policy {bad[0] if bad else args.policies!r}: use {', '.join(POLICIES)}")
    return policies


def _eval_text(path: str, errors: str) -> str:
    """The --eval file's text (sinklab.files.read_text), which must exist and hold some."""
    if not Path(path).is_file():
        raise SinklabError(f"text file does not exist: {path}")
    text = read_text(path, errors)
    if not text.strip():
        raise SinklabError(f"text file {path} is empty")
    return text


def _sinks_from_measure(folder: str) -> int:
    summary = Path(folder) / "summary.json"
    if not summary.exists():
        raise SinklabError(f"--sink-from-measure: {summary} does not exist")
    try:
        n_sink = max(1, int(json.loads(summary.read_text())["largest_sink"]["position"]))
    except (ValueError, KeyError, TypeError) as e:
        raise SinklabError(f"--sink-from-measure: {summary} has no largest_sink.position ({e})") from None
    print(f"keeping tokens 1..{n_sink} as sinks (largest Sink_k in {summary})")
    return n_sink


def _keep_ids(args, n_sink: int) -> list[int] | None:
    """The token ids --keep-sink-tokens names: a measurement's named later sink tokens, or a list of ids."""
    from ..measure import sink_tokens

    if args.keep_sink_tokens is None:
        return None
    if args.eval is None:
        raise SinklabError("--keep-sink-tokens works with --eval (it keeps tokens as they stream one a step)")
    if args.keep_slots < 1 or n_sink + args.keep_slots >= args.cache_size:
        raise SinklabError(f"--keep-slots {args.keep_slots} must be at least 1 and leave a window in "
                           f"--cache-size {args.cache_size} beside {n_sink} sinks")
    source = Path(args.keep_sink_tokens)
    if source.is_dir():
        table = source / "sink_tokens.csv"
        if not table.exists():
            raise SinklabError(f"--keep-sink-tokens: {table} does not exist (measure with this sinklab first)")
        with open(table, newline="") as f:
            rows = sink_tokens.named(list(csv.DictReader(f)))
        if not rows:
            raise SinklabError(f"--keep-sink-tokens: {table} names no later sink token (>= "
                               f"{sink_tokens.MIN_HEAD_SHARE:g} % of heads over >= {sink_tokens.MIN_OCCURRENCES} "
                               "occurrences)")
        print("keeping evicted sink tokens " + ", ".join(f"{r['token']} ({r['token_id']})" for r in rows)
              + f" in {args.keep_slots} slots (from {table})")
        return [int(r["token_id"]) for r in rows]
    try:
        ids = [int(x) for x in args.keep_sink_tokens.split(",") if x.strip()]
    except ValueError:
        raise SinklabError(f"--keep-sink-tokens {args.keep_sink_tokens!r} is neither a measurement folder nor "
                           "comma-separated token ids") from None
    if not ids or min(ids) < 0:
        raise SinklabError(f"--keep-sink-tokens {args.keep_sink_tokens!r}: give token ids >= 0")
    return ids


def _write_stream_results(args, model_name: str, result: dict, n_sink: int, per: int) -> None:
    from ..stream import summarise

    rows = summarise(result, args.recompute_stride)
    out = Path(args.out)
    with staged_folder(out) as staging:
        _write_stream_files(staging, args, model_name, result, rows, n_sink, per)
    kind = "one stream" if args.streams == 1 else f"{args.streams} independent streams"
    print(f"{model_name}: {kind} x {per} tokens, cache {result['cache_size']} (n_sink={n_sink})")
    print(f"{'policy':<10}{'ppl (all)':>11}{'ppl past cache':>16}{'ppl on recompute pos.':>23}{'tokens/s':>10}")
    for r in rows:
        cells = [r["ppl_all"], r["ppl_past_cache"], r.get("ppl_on_recompute_positions")]
        a, b, c = (f"{x:.3f}" if x is not None else "-" for x in cells)
        print(f"{r['policy']:<10}{a:>11}{b:>16}{c:>23}{r['tokens_per_s']:>10.1f}")
    print(f"results: {out}/stream.json, stream.csv, running_ppl.png")


def _write_stream_files(out, args, model_name: str, result: dict, rows: list, n_sink: int, per: int) -> None:
    from ..report import write_csv, write_json
    from ..report.plots import running_perplexity

    write_json({"model": model_name, "file": args.eval, "tokens": per * args.streams, "streams": args.streams,
                "cache_size": result["cache_size"], "n_sink": n_sink, "policies": rows,
                "keep_sink_tokens": ({"ids": result["keep_ids"], "slots": result["keep_slots"]}
                                     if result.get("keep_ids") else None),
                "tokens_per_s_by_position": result["tokens_per_s_by_position"],
                "mean_nll_by_position": {k: [round(x, 4) for x in v.nanmean(0).tolist()]
                                         for k, v in result["nll"].items()}}, out / "stream.json")
    write_csv(rows, out / "stream.csv")
    running_perplexity(result, out / "running_ppl.png")
