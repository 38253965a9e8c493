"""Fuzzing the CLI's option values (hypothesis, derandomized, bounded examples): whatever the value,
a command either succeeds or stops with one `sinklab: error:` line and exit 2. Any other exception,
or a traceback on stderr, fails the test.

Valid values run the command for real, so the numeric strategies stay small enough (a handful of
training steps, tiny models) for each example to take about a second; out-of-range, malformed and
odd values (nan, inf, 1e309, empty, NUL, unicode) come from every strategy.
"""
import contextlib
import io
import os
import tempfile

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sinklab.cli import main  # noqa: E402
from sinklab.config import MODEL_RANGES  # noqa: E402
from sinklab.train.config import TRAIN_RANGES  # noqa: E402

ODD = st.sampled_from(["", "abc", "nan", "inf", "-inf", "1e309", "-0", "0x10", " 3", "1_0", "[1,", "{a: 1}",
                       "null", "true", "\x00", "\u00e9", "--", "1.5", "-1e-9", "[1, 2, 3]"])
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)


def ints(low, high):
    return st.one_of(st.integers(low, high).map(str), ODD, TEXT)


def floats(low, high):
    return st.one_of(st.floats(low, high).map(repr), ODD, TEXT)  # nan and inf come from ODD


def bounded(max_examples: int):
    """A fixed seed (derandomize), no example database, no deadline: the same examples every run."""
    return settings(derandomize=True, deadline=None, database=None, print_blob=True, max_examples=max_examples,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
                    phases=(Phase.explicit, Phase.generate))  # no shrinking: a failure prints its example as found


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_hf_folders, tiny_llama_with_tokenizer):
    from sinklab.data.shards import prepare

    d = tmp_path_factory.mktemp("fuzz")
    (d / "t.txt").write_text("attention sinks appear in trained language models. " * 200)
    prepare([str(d / "t.txt")], d / "shards", "bytes", progress=False)
    return {"model": str(tiny_hf_folders["llama"]), "txt": str(d / "t.txt"), "shards": str(d / "shards"),
            "model_tok": tiny_llama_with_tokenizer}


def run_clean(argv: list[str]) -> None:
    """Run `sinklab ARGV` in a fresh folder; assert a clean outcome."""
    err = io.StringIO()
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(err), \
            contextlib.redirect_stdout(io.StringIO()):
        argv = [a.replace("OUT", os.path.join(tmp, "out")) for a in argv]
        try:
            code = main(argv)
        except SystemExit as e:  # argparse
            code = e.code
    lines = err.getvalue().splitlines()
    assert "Traceback" not in err.getvalue(), (argv, lines[-5:])
    if code != 0:
        errors = [line for line in lines if line.startswith("sinklab: error:")]
        assert code == 2 and len(errors) == 1, (argv, code, lines[-5:])


MEASURE_OPTIONS = {"--n": ints(-3, 40), "--T": ints(-3, 300), "--eps": floats(-1, 2), "-K": ints(-3, 600),
                   "--batch-size": ints(-3, 40), "--seed": ints(-10, 10**6), "--bos": TEXT, "--probe": TEXT}


@bounded(40)
@given(data=st.data())
def test_measure_option_values(inputs, data):
    option = data.draw(st.sampled_from(sorted(MEASURE_OPTIONS)), label="option")
    value = data.draw(MEASURE_OPTIONS[option], label="value")
    run_clean(["measure", "--model", inputs["model"], "--probe", "random", "--n", "4", "--T", "16", "--no-figures",
               "--out", "OUT", option, value])


DATA_OPTIONS = {
    "prepare": {"--val-fraction": floats(-1, 1), "--max-chars": ints(-3, 5000), "--text-field": TEXT,
                "--tokenizer": st.one_of(st.integers(-5, 600).map(lambda n: f"bpe:{n}"), TEXT)},
    "synthetic": {"--tokens": ints(-10, 20000), "--vocab": ints(-5, 70000), "--seq-len": ints(-3, 3000)},
}


@bounded(40)
@given(data=st.data())
def test_data_option_values(inputs, data):
    action = data.draw(st.sampled_from(sorted(DATA_OPTIONS)), label="action")
    option = data.draw(st.sampled_from(sorted(DATA_OPTIONS[action])), label="option")
    value = data.draw(DATA_OPTIONS[action][option], label="value")
    base = ["data", "prepare", inputs["txt"]] if action == "prepare" else ["data", "synthetic", "--tokens", "2048",
                                                                           "--seq-len", "64"]
    run_clean(base + ["--out", "OUT", option, value])


FLOAT_FIELDS = {"lr", "min_lr", "weight_decay", "beta1", "beta2", "clip", "data_fraction", "rope_theta", "norm_eps",
                "init_std", "score_scale"}
FIELDS = sorted([f"train.{n}" for n in TRAIN_RANGES] + [f"model.{n}" for n in MODEL_RANGES]
                + ["model.window", "model.prefix_len", "model.n_kv_heads", "model.score_scale", "train.random_tokens",
                   "train.fixed_token", "train.device", "train.schedule", "model.score", "model.sigmoid_bias"])


def field_value(field: str):
    name = field.split(".", 1)[1]
    if name in FLOAT_FIELDS:
        return floats(-1, 2)
    if name in ("random_tokens", "fixed_token"):
        return st.one_of(st.lists(st.integers(-3, 300), max_size=3).map(lambda v: "[" + ",".join(map(str, v)) + "]"),
                         ODD)
    if name in ("device", "schedule", "score", "sigmoid_bias"):
        return st.one_of(TEXT, st.sampled_from(["cpu", "auto", "cuda:0", "cosine", "sigmoid", "auto"]))
    return ints(-3, 40)  # small: a valid size still trains in about a second


@pytest.mark.slow
@bounded(30)
@given(data=st.data())
def test_train_field_values(inputs, data):
    field = data.draw(st.sampled_from(FIELDS), label="field")
    value = data.draw(field_value(field), label="value")
    run_clean(["train", "tiny", f"train.data={inputs['shards']}", "train.out=OUT", "train.steps=2",
               "train.seq_len=32", "train.measure_n=4", "train.measure_T=16", "train.eval_batches=1",
               "train.measure_every=1000", "train.eval_every=1000", f"{field}={value}"])


SWEEP_OPTIONS = {"--gpus": ints(-3, 3), "--torchrun": ints(-3, 3), "--preset": TEXT, "--only": TEXT,
                 "--set": st.one_of(TEXT, st.sampled_from(FIELDS).map(lambda f: f + "=abc"))}


@bounded(40)
@given(data=st.data())
def test_sweep_and_scorecard_option_values(inputs, data):
    """Only values that fail validation reach here: a valid sweep would train; that is the test of
    test_experiments. Bad values must fail before "[1/N]", so nothing trains."""
    option = data.draw(st.sampled_from(sorted(SWEEP_OPTIONS)), label="option")
    value = data.draw(SWEEP_OPTIONS[option], label="value")
    command = data.draw(st.sampled_from(["sweep", "scorecard"]), label="command")
    if command == "scorecard" and option in ("--gpus", "--torchrun", "--only"):
        option, value = "--set", f"train.steps={value}"
    argv = [command, "norm", "--preset", "tiny", "--out", "OUT"]
    if command == "sweep":  # train.steps=0 is always invalid, so nothing trains whatever the other value
        argv += ["--data", inputs["shards"]] + (["--set", value, "train.steps=0"] if option == "--set" else
                                                [option, value, "--set", "train.steps=0"])
    else:
        argv += [option, value]
    run_clean(argv)


STREAM_OPTIONS = {
    "prompt": {"--n-sink": ints(-3, 300), "--window": ints(-3, 300), "--max-new-tokens": ints(-3, 20)},
    "eval": {"--n-sink": ints(-3, 300), "--cache-size": ints(-3, 300), "--tokens": ints(-3, 2000),
             "--streams": ints(-3, 8), "--recompute-stride": ints(-3, 64), "--policies": TEXT},
}
STREAM_BASE = {"prompt": ["--prompt", "attention sinks", "--max-new-tokens", "4"],
               "eval": ["--eval", "TXT", "--tokens", "256", "--cache-size", "32"]}


def run_stream(inputs, mode, option, value):
    base = [a.replace("TXT", inputs["txt"]) for a in STREAM_BASE[mode]]
    run_clean(["stream", "--model", inputs["model_tok"], "--out", "OUT", *base, option, value])


@pytest.mark.slow
@bounded(25)
@given(data=st.data())
def test_stream_option_values(inputs, data):
    mode = data.draw(st.sampled_from(sorted(STREAM_OPTIONS)), label="mode")
    option = data.draw(st.sampled_from(sorted(STREAM_OPTIONS[mode])), label="option")
    run_stream(inputs, mode, option, data.draw(STREAM_OPTIONS[mode][option], label="value"))


@pytest.mark.slow  # a streamed generation per example
@bounded(20)
@given(value=floats(-1, 3))
def test_stream_temperature_values(inputs, value):
    run_stream(inputs, "prompt", "--temperature", value)
