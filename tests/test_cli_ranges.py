"""Every subcommand, every option with a range: below it, above it, and of the wrong type. Each must
be one `sinklab: error:` line naming the option or field, exit 2, no traceback, nothing written.

Train fields are generated from the range tables the configs are validated with, so a field added
there is tested here too.
"""
import pytest

from sinklab.cli import main
from sinklab.config import MODEL_RANGES
from sinklab.train.config import TRAIN_RANGES


def _bounds(section: str, ranges: dict):
    """(override, fragment) below, above and of the wrong type for each ranged field."""
    for name, (low, high, low_open, high_open) in ranges.items():
        integral = isinstance(low, int) and name not in ("lr", "min_lr", "weight_decay", "beta1", "beta2", "clip",
                                                          "data_fraction", "rope_theta", "norm_eps", "init_std")
        if low is not None:
            yield f"{section}.{name}={low if low_open else low - (1 if integral else 0.5)}", f"{section}.{name}"
        if high is not None:
            yield f"{section}.{name}={high if high_open else high + 1}", f"{section}.{name}"
        yield f"{section}.{name}=abc", f"{section}.{name}"


TRAIN_CASES = [*_bounds("train", TRAIN_RANGES), *_bounds("model", MODEL_RANGES),
               # ranges that depend on another field or on the data
               ("train.seq_len=300", "T=300"), ("train.measure_T=300", "measure_T=300"),
               ("train.micro_batch=5", "not divisible"), ("train.min_lr=1", "min_lr"),
               ("train.random_tokens=[0,1000]", "random_tokens"), ("train.random_tokens=abc", "random_tokens"),
               ("train.fixed_token=[-1,0]", "fixed_token"), ("train.fixed_token=[0,1000]", "fixed_token"),
               ("train.measure_T_long=5000", "measure_T_long"), ("train.device=gpu7", "device"),
               ("train.dtype=int8", "dtype"), ("train.schedule=linear", "schedule"),
               ("model.n_kv_heads=0", "n_kv_heads"), ("model.n_kv_heads=3", "n_kv_heads"),
               ("model.n_heads=3", "n_heads"), ("model.window=0", "window"), ("model.prefix_len=0", "prefix_len"),
               ("model.prefix_len=100000", "prefix_len"), ("model.score_scale=0", "score_scale"),
               ("model.position=fourier", "position"), ("model.attn_bias_dim=1000", "attn_bias_dim"),
               ("model.sigmoid_bias=high", "sigmoid_bias"), ("model.tie_embeddings=2", "tie_embeddings")]


@pytest.fixture(scope="module")
def places(tmp_path_factory, tiny_hf_folders, tiny_llama_with_tokenizer):
    from sinklab.data.shards import prepare

    d = tmp_path_factory.mktemp("inputs")
    (d / "t.txt").write_text("attention sinks appear in trained language models. " * 300)
    (d / "file").write_text("not a folder")
    shards = tmp_path_factory.mktemp("shards")
    prepare([str(d / "t.txt")], shards, "bytes", progress=False)
    return {"MODEL_TOK": tiny_llama_with_tokenizer,
            "MODEL": str(tiny_hf_folders["llama"]), "SHARDS": str(shards), "TXT": str(d / "t.txt"),
            "FILE": str(d / "file")}



def check(argv, fragment, places, tmp_path, capsys):
    out = tmp_path / "out"
    subs = dict(places, OUT=str(out))
    for key, value in subs.items():  # placeholders, also inside key=value arguments
        argv = [a.replace(key, value) for a in argv]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse: a wrong type or an unknown choice
        code = e.code
    err = capsys.readouterr().err.splitlines()
    errors = [line for line in err if line.startswith("sinklab: error:")]
    assert code == 2 and len(errors) == 1, (argv, code, err)
    assert not any("Traceback" in line for line in err)
    assert subs.get(fragment, fragment) in errors[0], (argv, errors[0])
    assert not out.exists(), f"{argv} wrote {out} before failing"


@pytest.mark.parametrize("override,fragment", TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_train_fields(override, fragment, places, tmp_path, capsys):
    check(["train", "tiny", "train.data=SHARDS", "train.out=OUT", override], fragment, places, tmp_path, capsys)


MEASURE = ["measure", "--model", "MODEL", "--probe", "random", "--no-figures", "--out", "OUT"]
MEASURE_CASES = [
    (["--n", "0"], "--n"), (["--n", "abc"], "--n"),
    (["--T", "1"], "--T"),
    (["--T", "300"], "T=300"),
    (["--T", "abc"], "--T"), (["--eps", "0"], "--eps"), (["--eps", "1"], "--eps"), (["--eps", "abc"], "--eps"),
    (["-K", "0"], "-K"), (["-K", "500"], "-K"), (["-K", "abc"], "-K"), (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "abc"], "--batch-size"), (["--bos", "sometimes"], "--bos"), (["--dtype", "int8"], "--dtype"),
    (["--device", "banana"], "--device"), (["--probe", "missing.txt"], "--probe"),
]


@pytest.mark.parametrize("args,fragment", MEASURE_CASES,
                         ids=[" ".join(getattr(c, "values", c)[0]) for c in MEASURE_CASES])
def test_measure_options(args, fragment, places, tmp_path, capsys):
    check(MEASURE + args, fragment, places, tmp_path, capsys)


def test_measure_out_is_a_file(places, tmp_path, capsys):
    check(MEASURE[:-2] + ["--out", "FILE"], "FILE", places, tmp_path, capsys)


PREPARE = ["data", "prepare", "TXT", "--out", "OUT"]
SYNTHETIC = ["data", "synthetic", "--out", "OUT"]
DATA_CASES = [
    (PREPARE + ["--val-fraction", "0"], "--val-fraction"), (PREPARE + ["--val-fraction", "0.5"], "--val-fraction"),
    (PREPARE + ["--val-fraction", "abc"], "--val-fraction"), (PREPARE + ["--max-chars", "0"], "--max-chars"),
    (PREPARE + ["--max-chars", "abc"], "--max-chars"), (PREPARE + ["--tokenizer", "bpe:10"], "bpe:N"),
    (PREPARE + ["--tokenizer", "bpe:abc"], "bpe:abc"), (PREPARE + ["--shard-dtype", "int8"], "--shard-dtype"),
    (PREPARE + ["--encoding-errors", "ignore"], "--encoding-errors"),
    (["data", "prepare", "TXT", "--out", "FILE"], "FILE"),
    (SYNTHETIC + ["--tokens", "0"], "--tokens"), (SYNTHETIC + ["--tokens", "abc"], "--tokens"),
    (SYNTHETIC + ["--vocab", "4"], "--vocab"), (SYNTHETIC + ["--vocab", "70000"], "--vocab"),
    (SYNTHETIC + ["--vocab", "abc"], "--vocab"), (SYNTHETIC + ["--seq-len", "2"], "--seq-len"),
    (SYNTHETIC + ["--seq-len", "abc"], "--seq-len"), (["data", "synthetic", "--out", "FILE"], "FILE"),
]


@pytest.mark.parametrize("argv,fragment", DATA_CASES, ids=[" ".join(c[0][1:]) for c in DATA_CASES])
def test_data_options(argv, fragment, places, tmp_path, capsys):
    check(argv, fragment, places, tmp_path, capsys)


SWEEP = ["sweep", "weight_decay", "--preset", "tiny", "--data", "SHARDS", "--out", "OUT"]
STUDY = ["study", "weight_decay", "--preset", "tiny", "--data", "SHARDS", "--out", "OUT"]
SWEEP_CASES = [
    (SWEEP + ["--gpus", "-1"], "--gpus"), (SWEEP + ["--gpus", "abc"], "--gpus"),
    (SWEEP + ["--torchrun", "-1"], "--torchrun"), (SWEEP + ["--torchrun", "abc"], "--torchrun"),
    (SWEEP + ["--set", "train.steps=abc"], "train.steps"), (SWEEP + ["--set", "train.lr=-1"], "train.lr"),
    (SWEEP + ["--set", "train.steps=0"], "train.steps"), (SWEEP + ["--only", "nothing"], "--only"),
    (["sweep", "banana", "--data", "SHARDS", "--out", "OUT"], "banana"),
    (["sweep", "norm", "--preset", "banana", "--data", "SHARDS", "--out", "OUT"], "banana"),
    (["sweep", "norm", "--preset", "tiny", "--data", "OUT", "--out", "OUT"], "manifest.json"),
    (["scorecard", "norm", "--preset", "tiny", "--out", "OUT", "--set", "train.steps=abc"], "train.steps"),
    (["scorecard", "norm", "--preset", "banana", "--out", "OUT"], "banana"),
    (["scorecard", "banana", "--out", "OUT"], "banana"),
    (["report", "OUT"], "metrics.jsonl"),
    (["zoo", "--types", "banana", "--out", "OUT"], "banana"),  # zoo has no numeric option
    (["zoo", "--types", "llama", "--out", "FILE/table.md"], "is a file"),
    (["train", "missing.yaml", "train.data=SHARDS"], "missing.yaml"),
    (["train", "tiny", "train.out=OUT"], "train.data"),
    (["train", "tiny", "train.data=SHARDS", "train.out=OUT", "steps"], "key=value"),
    (STUDY + ["--seeds", "0"], "--seeds"), (STUDY + ["--seeds", "abc"], "--seeds"),
    (STUDY + ["--reference-seeds", "0"], "--reference-seeds"), (STUDY + ["--per-gpu", "0"], "--per-gpu"),
    (STUDY + ["--per-gpu", "abc"], "--per-gpu"), (STUDY + ["--deadline", "0"], "--deadline"),
    (STUDY + ["--deadline", "abc"], "--deadline"), (STUDY + ["--deadline", "nan"], "--deadline"),
    (STUDY + ["--gpus", "-1"], "--gpus"), (STUDY + ["--set", "train.steps=abc"], "train.steps"),
    (STUDY + ["--records", "SHARDS"], "is a folder"), (STUDY + ["--records", "FILE/x.jsonl"], "is a file"),
    (["study", "banana", "--preset", "tiny", "--data", "SHARDS", "--out", "OUT"], "banana"),
    (["study", "norm", "--preset", "banana", "--data", "SHARDS", "--out", "OUT"], "banana"),
    (["study", "norm", "--preset", "tiny", "--data", "OUT", "--out", "OUT"], "manifest.json"),
]


@pytest.mark.parametrize("argv,fragment", SWEEP_CASES, ids=[" ".join(c[0][:1] + c[0][-2:]) for c in SWEEP_CASES])
def test_sweep_scorecard_report_and_train_arguments(argv, fragment, places, tmp_path, capsys):
    check(argv, fragment, places, tmp_path, capsys)


STREAM = ["stream", "--model", "MODEL_TOK", "--out", "OUT"]
STREAM_CASES = [
    (["--prompt", "hi", "--n-sink", "-1"], "--n-sink"), (["--prompt", "hi", "--n-sink", "abc"], "--n-sink"),
    (["--prompt", "hi", "--window", "0"], "--window"), (["--prompt", "hi", "--window", "abc"], "--window"),
    (["--prompt", "hi", "--window", "100000"], "context"),
    (["--prompt", "hi", "--max-new-tokens", "-3"], "--max-new-tokens"),
    (["--prompt", "hi", "--max-new-tokens", "abc"], "--max-new-tokens"),
    (["--prompt", "hi", "--temperature", "-1"], "--temperature"),
    (["--prompt", "hi", "--temperature", "abc"], "--temperature"),
    (["--eval", "TXT", "--streams", "0"], "--streams"), (["--eval", "TXT", "--streams", "abc"], "--streams"),
    (["--eval", "TXT", "--cache-size", "0"], "--cache-size"), (["--eval", "TXT", "--cache-size", "abc"], "--cache-size"),
    (["--eval", "TXT", "--tokens", "0"], "--tokens"), (["--eval", "TXT", "--tokens", "abc"], "--tokens"),
    (["--eval", "TXT", "--recompute-stride", "0"], "--recompute-stride"),
    (["--eval", "TXT", "--recompute-stride", "abc"], "--recompute-stride"),
    (["--eval", "TXT", "--policies", "bogus"], "bogus"),
]


@pytest.mark.parametrize("args,fragment", STREAM_CASES, ids=[" ".join(c[0][2:]) for c in STREAM_CASES])
def test_stream_options(args, fragment, places, tmp_path, capsys):
    check(STREAM + args, fragment, places, tmp_path, capsys)


def test_every_subcommand_is_covered():
    from sinklab.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    covered = {"measure", "data", "train", "report", "stream", "sweep", "scorecard", "zoo", "study"}
    assert set(sub.choices) <= covered, f"no range cases for {set(sub.choices) - covered}"
