"""Subcommands beyond `measure`: data, train, report. Each adds one subparser to the CLI."""
from __future__ import annotations

import os

from .config import PRESETS

PRESET_NAMES = ", ".join(PRESETS)


def _data(sub):
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
    from .data.shards import prepare

    m = prepare(args.inputs, args.out, args.tokenizer, args.val_fraction, args.text_field, max_chars=args.max_chars,
                dtype=args.shard_dtype, encoding_errors=args.encoding_errors, overwrite=args.overwrite)
    print(f"{m['documents']} documents -> {m['tokens']['train']:,} train + {m['tokens']['val']:,} val tokens "
          f"({m['tokenizer']}, vocabulary {m['vocab_size']}) in {args.out}")


def cmd_data_synthetic(args):
    from .data.synthetic import write

    m = write(args.out, args.tokens, args.vocab, args.seq_len, overwrite=args.overwrite)
    print(f"Bigram-Backcopy: {m['tokens']['train']:,} train tokens, vocabulary {m['vocab_size']}, in {args.out}")


def _train(sub):
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


STOPPED_EXIT = 3  # `sinklab train` stopped on request before its last step, with a checkpoint to resume


def cmd_train(args):
    from .errors import SinklabError
    from .report import write_results
    from .train.config import parse_overrides, resolve_configs
    from .train.loop import train

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
    print(f"report: {_measure_and_report(tc.out)}")


def _report(sub):
    p = sub.add_parser("report", help="plot Sink_1 and loss against step for a training run",
                       description="Write RUN/report.html: Sink_1 and loss against step, the measurements logged, "
                                   "and a link to the full measurement of the last checkpoint on the trainer's probe "
                                   "(RUN/final_measure/, measured here unless present for that step).")
    p.add_argument("run", help="training run folder (with metrics.jsonl)")
    p.add_argument("--no-measure", action="store_true", help="only the curves; do not measure the last checkpoint")
    p.set_defaults(func=cmd_report)


def print_fields(mc, tc) -> None:
    """Every config field, as `sinklab train --fields` shows it: name = value, and the allowed values."""
    import dataclasses

    from .config import CHOICES
    from .train.config import TRAIN_CHOICES

    for prefix, cfg, choices in (("model", mc, CHOICES), ("train", tc, TRAIN_CHOICES)):
        for f in dataclasses.fields(cfg):
            allowed = f"   ({' | '.join(choices[f.name])})" if f.name in choices else ""
            print(f"{prefix}.{f.name} = {getattr(cfg, f.name)!r}{allowed}")


def _measure_and_report(run, measure_final: bool = True):
    """RUN/report.html. The report only reads the folder, so the last checkpoint's measurement it links
    (RUN/final_measure) is made first, here, unless present for that step."""
    from pathlib import Path

    from .report import write_results
    from .report.training import read_run_metrics, report_run
    from .train.probe import measure_final_checkpoint

    rows = read_run_metrics(run)  # a folder that holds no run fails before any measuring
    if measure_final:
        measure_final_checkpoint(Path(run), write_results)
    return report_run(run, rows)


def cmd_report(args):
    print(f"report: {_measure_and_report(args.run, measure_final=not args.no_measure)}")


def _stream(sub):
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


def _read_text(path: str, errors: str = "strict") -> str:
    import lzma
    from pathlib import Path

    from .errors import SinklabError

    if not Path(path).is_file():
        raise SinklabError(f"text file does not exist: {path}")
    try:
        data = lzma.open(path).read() if path.endswith(".xz") else Path(path).read_bytes()
        text = data.decode("utf-8", errors=errors)
    except lzma.LZMAError as e:
        raise SinklabError(f"cannot decompress {path}: {e}") from None
    except UnicodeDecodeError as e:
        raise SinklabError(f"{path} is not UTF-8 text (byte {e.start}); --encoding-errors replace reads it "
                           "anyway") from None
    except OSError as e:
        raise SinklabError(f"cannot read {path}: {e.strerror or e}") from None
    if not text.strip():
        raise SinklabError(f"text file {path} is empty")
    return text


MIN_TEMPERATURE = 1e-3  # below it, logits / temperature overflow to inf and sampling breaks


def _stream_sizes(args, n_sink: int) -> int:
    """Check the numeric options before loading anything; returns the --eval window."""
    from .errors import SinklabError

    checks = [("--n-sink", n_sink, 0), ("--cache-size", args.cache_size, 1), ("--tokens", args.tokens, 2),
              ("--streams", args.streams, 1), ("--recompute-stride", args.recompute_stride, 1),
              ("--max-new-tokens", args.max_new_tokens, 1)]
    for flag, value, low in checks:
        if value < low:
            raise SinklabError(f"{flag} must be at least {low} (got {value})")
    if args.window is not None and args.window < 1:
        raise SinklabError(f"--window must be at least 1 (got {args.window})")
    if not (args.temperature == 0 or MIN_TEMPERATURE <= args.temperature < float("inf")):
        raise SinklabError(f"--temperature must be 0 (greedy) or from {MIN_TEMPERATURE:g} up, finite "
                           f"(got {args.temperature:g})")
    if args.eval is not None and n_sink >= args.cache_size:
        raise SinklabError(f"--n-sink {n_sink} leaves no room in --cache-size {args.cache_size}")
    if args.eval is not None and args.tokens // args.streams < 2:
        raise SinklabError(f"--tokens {args.tokens} over {args.streams} streams leaves fewer than 2 tokens a stream")
    return args.window if args.window is not None else args.cache_size - n_sink


def _sinks_from_measure(folder: str) -> int:
    import json
    from pathlib import Path

    from .errors import SinklabError

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
    import csv
    from pathlib import Path

    from .errors import SinklabError
    from .measure import sink_tokens

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


def cmd_stream(args):
    from . import stream
    from .errors import SinklabError
    from .files import claim_output_folder
    from .load import load_model

    n_sink = _sinks_from_measure(args.sink_from_measure) if args.sink_from_measure else args.n_sink
    window = _stream_sizes(args, n_sink)
    keep_ids = _keep_ids(args, n_sink)
    policies = [p for p in args.policies.split(",") if p] + (["keep"] if keep_ids else [])
    policies = list(dict.fromkeys(policies))
    if "keep" in policies and not keep_ids:
        raise SinklabError("policy 'keep' needs --keep-sink-tokens (the token ids to keep)")
    bad = [p for p in policies if p not in stream.POLICIES]
    if bad or not policies:
        raise SinklabError(f"unknown policy {bad[0] if bad else args.policies!r}: use {', '.join(stream.POLICIES)}")
    text = args.prompt if args.prompt is not None else _read_text(args.eval, args.encoding_errors)
    if args.eval is not None:  # before the model loads and the text is scored
        claim_output_folder(args.out, STREAM_MARKER, args.overwrite)
    loaded = load_model(args.model, device=args.device, dtype=args.dtype)
    sm = stream.prepare_stream(loaded)
    if args.prompt is not None:
        window = args.window if args.window is not None else stream.default_window(sm.model, n_sink)
        print(stream.generate(sm, text, args.max_new_tokens, n_sink, window, args.temperature))
        return 0
    tok = loaded.tokenizer
    if tok is None or tok.encode is None:
        raise SinklabError(f"{loaded.name} has no tokenizer; streaming text needs one")
    stream.check_sizes(sm.model, n_sink, window)
    ids = tok.encode(text)
    per = args.tokens // args.streams
    if len(ids) < per * args.streams:
        raise SinklabError(f"--eval needs {per * args.streams} tokens and {args.eval} has {len(ids)}; lower --tokens")
    import torch

    batch = torch.tensor(ids[: per * args.streams]).view(args.streams, per)
    result = stream.perplexity(sm, batch, n_sink + window, n_sink, policies, args.recompute_stride, decode=args.decode,
                               keep_ids=keep_ids, keep_slots=args.keep_slots)
    _write_stream_results(args, loaded.name, result, n_sink, per)
    return 0


def _write_stream_results(args, model_name: str, result: dict, n_sink: int, per: int) -> None:
    from pathlib import Path

    from . import stream
    from .files import staged_folder

    rows = stream.summarise(result, args.recompute_stride)
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


STREAM_MARKER = "stream.json"  # a folder holding it holds a stream evaluation


def _write_stream_files(out, args, model_name: str, result: dict, rows: list, n_sink: int, per: int) -> None:
    from .report import write_csv, write_json
    from .report.plots import running_perplexity

    write_json({"model": model_name, "file": args.eval, "tokens": per * args.streams, "streams": args.streams,
                "cache_size": result["cache_size"], "n_sink": n_sink, "policies": rows,
                "keep_sink_tokens": ({"ids": result["keep_ids"], "slots": result["keep_slots"]}
                                     if result.get("keep_ids") else None),
                "tokens_per_s_by_position": result["tokens_per_s_by_position"],
                "mean_nll_by_position": {k: [round(x, 4) for x in v.nanmean(0).tolist()]
                                         for k, v in result["nll"].items()}}, out / "stream.json")
    write_csv(rows, out / "stream.csv")
    running_perplexity(result, out / "running_ppl.png")


def _suites_arg(value: str) -> list[str]:
    from .experiments import suite_names

    return suite_names() if value == "all" else value.split(",")


def _sweep(sub):
    p = sub.add_parser("sweep", help="run a suite of the paper's experiments (skips finished runs, resumes the rest)",
                       description="Run SUITE (or all) at a preset. Finished runs are skipped and interrupted ones "
                                   "resumed, so rerunning the same command completes only what is missing.")
    p.add_argument("suite", help="suite name(s), comma-separated, or all (see `sinklab sweep --list`)", nargs="?")
    p.add_argument("--list", action="store_true", help="list the suites and exit")
    p.add_argument("--preset", default="quick-60m", help=f"one of {PRESET_NAMES} (default: quick-60m)")
    p.add_argument("--data", help="token shards from `sinklab data prepare`")
    p.add_argument("--out", default="runs/sweeps")
    p.add_argument("--only", default=None, help="comma-separated change names")
    p.add_argument("--gpus", type=int, default=None, help="parallel runs, one per GPU (default: all visible)")
    p.add_argument("--torchrun", type=int, default=0, help="GPUs per run through torchrun (default: 0 = one process)")
    p.add_argument("--set", nargs="*", default=[],
                   help="extra key=value overrides for every run (e.g. train.steps=1000)")
    p.add_argument("--launcher", choices=("local", "submitit"), default="local",
                   help="local: this host's GPUs (default); submitit: one cluster job per run (pip install submitit)")
    p.add_argument("--cluster", choices=("auto", "slurm", "local"), default="auto",
                   help="--launcher submitit: SLURM, or jobs on this machine (auto: SLURM where sbatch exists)")
    p.add_argument("--slurm-partition", default=None, help="--launcher submitit: the SLURM partition")
    p.add_argument("--slurm-time", type=int, default=1440, help="--launcher submitit: minutes a job may run")
    p.add_argument("--slurm-cpus", type=int, default=None, help="--launcher submitit: CPUs per job")
    p.add_argument("--slurm-gpus", type=int, default=1,
                   help="--launcher submitit: GPUs per job (with --torchrun N, the job's node gets N)")
    p.set_defaults(func=cmd_sweep)
    s = sub.add_parser("scorecard", help="compare a suite's runs with the paper's published numbers")
    s.add_argument("suite", help="suite name(s), comma-separated, or all")
    s.add_argument("--preset", default="quick-60m")
    s.add_argument("--out", default="runs/sweeps")
    s.add_argument("--set", nargs="*", default=[], help="the same extra overrides the sweep used")
    s.set_defaults(func=cmd_scorecard)


def cmd_sweep(args):
    from .errors import SinklabError
    from .experiments import suite_names, sweep

    if args.list or not args.suite:
        from .experiments import load_suite

        for n in suite_names():
            s = load_suite(n)
            print(f"{n:<20} {len(s['changes'])} changes  {s['title']}")
        return 0
    if not args.data:
        raise SinklabError("sweep needs --data (token shards from `sinklab data prepare`)")
    _check_sweep_args(args)
    from .train.config import parse_overrides

    sweep(_suites_arg(args.suite), args.preset, args.out, args.data,
          only=args.only.split(",") if args.only else None, gpus=args.gpus, torchrun=args.torchrun,
          extra=parse_overrides(args.set), launcher=args.launcher, cluster=_cluster_options(args))
    print(f"done; `{scorecard_command(args)}` compares with the paper")
    return 0


def _cluster_options(args):
    """What `--launcher submitit` asks of the cluster (None for the local launcher)."""
    if args.launcher != "submitit":
        return None
    import importlib.util

    from .errors import SinklabError

    if importlib.util.find_spec("submitit") is None:
        raise SinklabError("--launcher submitit needs the submitit package: pip install 'sinklab[integrations]'")
    from .experiments.launch import ClusterOptions

    return ClusterOptions(cluster=None if args.cluster == "auto" else args.cluster, partition=args.slurm_partition,
                          timeout_min=args.slurm_time, gpus_per_run=args.slurm_gpus, cpus_per_task=args.slurm_cpus,
                          torchrun=args.torchrun)


def scorecard_command(args) -> str:
    """The scorecard command for a sweep's runs: the same suites, preset, folder and overrides (the
    overrides are part of each run's folder name, so without them the scorecard finds no run)."""
    import shlex

    words = ["sinklab", "scorecard", args.suite, "--preset", args.preset, "--out", args.out]
    return shlex.join(words + (["--set", *args.set] if args.set else []))


def _check_sweep_args(args) -> None:
    from .errors import SinklabError

    if args.preset not in PRESETS:
        raise SinklabError(f"unknown --preset {args.preset!r}: use one of {', '.join(PRESETS)}")
    if getattr(args, "slurm_time", 1) < 1:
        raise SinklabError(f"--slurm-time must be at least 1 minute (got {args.slurm_time})")
    for name in ("gpus", "torchrun", "slurm_gpus", "slurm_cpus"):
        value = getattr(args, name, None)
        if value is not None and value < 0:
            raise SinklabError(f"--{name.replace('_', '-')} must be >= 0 (got {value})")


def cmd_scorecard(args):
    from .experiments.scorecard import scorecard, scorecard_markdown
    from .train.config import parse_overrides

    _check_sweep_args(args)

    result = scorecard(_suites_arg(args.suite), args.preset, args.out, extra=parse_overrides(args.set))
    print(scorecard_markdown(result))
    print(f"\nscorecard: {result['folder']}/scorecard.html, scorecard.csv, claims.csv")
    return 0


def _study(sub):
    p = sub.add_parser("study", help="every suite's runs at a preset with seeds, in pieces that stop at a deadline; "
                                     "then each claim judged over seeds",
                       description="Train every change of SUITES (default: all) with --seeds seeds and each suite's "
                                   "baseline with --reference-seeds, --per-gpu runs at once on each GPU. At --deadline "
                                   "every active run stops after its step with a checkpoint; rerunning the command "
                                   "skips finished runs and resumes the rest. Records are rebuilt as runs finish.")
    p.add_argument("suites", nargs="?", default="all", help="suite name(s), comma-separated, or all (default)")
    p.add_argument("--preset", default="faithful-60m", help=f"one of {PRESET_NAMES} (default: faithful-60m)")
    p.add_argument("--data", help="token shards from `sinklab data prepare`")
    p.add_argument("--out", default="runs/study", help="the runs' folder (default: runs/study)")
    p.add_argument("--records", default=None, help="the records file (default: OUT/PRESET/study.jsonl)")
    p.add_argument("--seeds", type=int, default=2, help="seeds per change (default: 2)")
    p.add_argument("--reference-seeds", type=int, default=3, help="seeds of each suite's baseline (default: 3)")
    p.add_argument("--deadline", type=float, default=None,
                   help="seconds until active runs are stopped with a checkpoint (default: no deadline)")
    p.add_argument("--per-gpu", type=int, default=1, help="runs at once on each GPU, or CPU processes (default: 1)")
    p.add_argument("--gpus", type=int, default=None, help="GPUs to use (default: all visible)")
    p.add_argument("--set", nargs="*", default=[], help="extra key=value overrides for every run")
    p.set_defaults(func=cmd_study)


def cmd_study(args):
    import math
    from pathlib import Path

    from .errors import SinklabError
    from .experiments.study import claim_verdicts, plan_study, run_study, slots_for, write_records
    from .train.config import parse_overrides

    if not args.data:
        raise SinklabError("study needs --data (token shards from `sinklab data prepare`)")
    if args.deadline is not None and not args.deadline > 0:
        raise SinklabError(f"--deadline must be a positive number of seconds (got {args.deadline:g})")
    _check_sweep_args(args)
    from .data.shards import open_split

    open_split(args.data, "train")  # a bad --data is one error before the first run
    records = Path(args.records) if args.records else Path(args.out) / args.preset / "study.jsonl"
    _check_study_outputs(Path(args.out), records)
    suites = _suites_arg(args.suites)
    runs = plan_study(suites, args.preset, Path(args.out), args.data, args.seeds, args.reference_seeds,
                      parse_overrides(args.set))
    piece = run_study(runs, math.inf if args.deadline is None else args.deadline,
                      slots_for(runs, args.per_gpu, args.gpus), records)
    rows = write_records(runs, records)
    for v in claim_verdicts(rows, suites, min(args.seeds, 2), min(args.reference_seeds, 3)):
        print(f"{v['suite']}: {v['claim']}: {v['verdict']} ({v['evidence']})")
    print(f"records: {records} ({len(rows)} finished runs); this piece finished {len(piece.finished)}, "
          f"stopped {len(piece.stopped)}, {piece.remaining} not started")
    if piece.failed:
        raise SinklabError("runs failed: " + "; ".join(piece.failed))
    if not piece.complete:
        print("not complete: rerun the same command to go on")
        return STOPPED_EXIT
    return 0


def _check_study_outputs(out, records) -> None:
    """--out and --records can be written, before the first run (the records file is rebuilt from the runs)."""
    from .errors import SinklabError
    from .files import check_output_folder

    check_output_folder(out, "--out")
    if records.is_dir():
        raise SinklabError(f"--records {records} is a folder; give a file (e.g. {records / 'study.jsonl'})")
    check_output_folder(records.parent, "--records")


REGISTRY = [_data, _train, _report, _stream, _sweep, _study]
