"""Several models, revisions and saved checkpoints in one `sinklab measure`; the Python API called
again and again; the measurement's own bad-input lines."""
import csv
import importlib
import json

import pytest
import torch

import sinklab
from sinklab.cli import main
from sinklab.errors import SinklabError
from sinklab.measure import suite


def _tiny_llama(folder, seed):
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    model = AutoModelForCausalLM.from_config(cfg)
    model.save_pretrained(folder)
    return model


ARGS = ["--probe", "random", "--n", "4", "--T", "16", "--no-figures"]


@pytest.mark.slow  # two measurements
def test_two_models_and_a_missing_one_write_each_folder_and_the_comparison(tmp_path, capsys):
    a, b = _tiny_llama(tmp_path / "a", 0), _tiny_llama(tmp_path / "b", 1)
    capsys.readouterr()
    out = tmp_path / "out"
    code = main(["measure", "--model", str(tmp_path / "a"), "--model", str(tmp_path / "gone"),
                 "--model", str(tmp_path / "b"), *ARGS, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "gone: model path does not exist" in err and "1 of 3 could not be measured: gone" in err
    rows = list(csv.DictReader(open(out / "compare.csv")))
    assert [r["label"] for r in rows] == ["a", "b"]
    assert (out / "compare.png").exists()
    for label, model in (("a", a), ("b", b)):
        summary = json.loads((out / label / "summary.json").read_text())
        direct = sinklab.measure(model, probe="random", n=4, T=16, progress=False)
        assert float(rows[0 if label == "a" else 1]["mean_alpha_1"]) == summary["mean_alpha_1"] == direct.summary["mean_alpha_1"]


def test_a_runs_saved_checkpoints_are_measured_against_step(tmp_path):
    from sinklab.config import ModelConfig
    from sinklab.model.checkpoint import save_model
    from sinklab.model.decoder import SinkLM

    run = tmp_path / "run"
    for step in (200, 100, 1000):  # listed out of order on purpose
        torch.manual_seed(step)
        save_model(SinkLM(ModelConfig(vocab_size=256, d_model=32, n_layers=2, n_heads=4, d_ffn=64, max_seq_len=64)),
                   run / "checkpoints" / f"step{step}")
    entries = suite.expand([str(run)], None)
    assert [(e.label, e.step) for e in entries] == [("step100", 100), ("step200", 200), ("step1000", 1000)]
    assert main(["measure", "--model", str(run), *ARGS, "--out", str(tmp_path / "out")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "out" / "compare.csv")))
    assert [int(r["step"]) for r in rows] == [100, 200, 1000]
    from sinklab.report.compare import draw_comparison

    fig = draw_comparison([{**r, "step": int(r["step"]), "sink_1_pct": float(r["sink_1_pct"]), "eps": float(r["eps"]),
                            "sink_1_se": float(r["sink_1_se"]), "mean_alpha_1": float(r["mean_alpha_1"])} for r in rows])
    assert fig.axes[1].get_xlabel() == "training step" and fig.axes[0].get_ylim() == (0, 100)


@pytest.mark.slow  # a training, then a suite
def test_the_trainer_keeps_model_copies_that_the_suite_reads(tmp_path):
    from sinklab.data.synthetic import write

    write(tmp_path / "data", 40_000, 64, 64)
    run = tmp_path / "run"
    assert main(["train", "tiny", f"train.data={tmp_path / 'data'}", f"train.out={run}", "train.steps=4",
                 "train.ckpt_every=2", "train.keep_every=2", "train.measure_every=4", "train.eval_every=4",
                 "train.log_every=2", "train.device=cpu"]) == 0
    assert [e.label for e in suite.expand([str(run)], None)] == ["step2", "step4"]
    assert main(["train", "tiny", f"train.data={tmp_path / 'data'}", f"train.out={tmp_path / 'r2'}",
                 "train.ckpt_every=2", "train.keep_every=3"]) == 2   # not a multiple of ckpt_every


def test_revisions_name_their_steps_and_repeats_are_refused():
    entries = suite.expand(["EleutherAI/pythia-160m"], ["step1000", "step143000", "main"])
    assert [(e.label, e.revision, e.step) for e in entries] == [
        ("pythia-160m@step1000", "step1000", 1000), ("pythia-160m@step143000", "step143000", 143000),
        ("pythia-160m@main", "main", None)]
    assert suite.step_of("stage1-step1000-tokens5B") == 1000
    with pytest.raises(SinklabError, match="given twice"):
        suite.expand(["a/b", "a/b"], None)
    with pytest.raises(SinklabError, match="given twice"):
        suite.expand(["a/b"], ["main", "main"])
    with pytest.raises(SinklabError, match="exactly one --model"):
        suite.expand(["a/b", "c/d"], ["main"])


def test_an_unknown_revision_offline_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["measure", "--model", "sinklab-test/no-such-model", "--revision", "step1", *ARGS]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "revision 'step1'" in err[0] and "Traceback" not in err[0]


@pytest.mark.parametrize("argv,needle", [
    (["--device-map", "auto"], "no CUDA GPU"),
    (["--max-memory", "0=1GiB"], "--max-memory needs --device-map"),
    (["--device", "cuda:3"], "no CUDA GPU"),
    (["-K", "20"], "-K 20 is larger than T = 16"),
    (["--eps", "0.3", "0.3"], "--eps 0.3 is given twice"),
    (["--T", "16", "--T", "16"], "--T 16 is given twice"),
    (["--revision", "main"], "applies to hub model ids"),
    (["--T", "5000000", "-K", "2"], "beyond the measurement kernels' limit"),
])
def test_measure_bad_input_is_one_line(tmp_path, capsys, argv, needle):
    _tiny_llama(tmp_path / "m", 0)
    capsys.readouterr()  # save_pretrained's own progress bar
    base = ["measure", "--model", str(tmp_path / "m"), "--probe", "random", "--n", "2", "--out", str(tmp_path / "o")]
    if "--T" not in argv:
        base += ["--T", "16"]
    assert main(base + argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_sinklab_measure_stays_a_function_whatever_is_imported():
    from transformers import AutoModelForCausalLM, LlamaConfig

    model = AutoModelForCausalLM.from_config(LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64,
                                                         num_hidden_layers=2, num_attention_heads=4))
    first = sinklab.measure(model, probe="random", n=3, T=12, progress=False)
    importlib.import_module("sinklab.measure.run")  # the import that used to replace the function by the module
    from sinklab.measure.metrics import sink_rate  # noqa: F401
    from sinklab.measure import capture  # noqa: F401

    second = sinklab.measure(model, probe="random", n=3, T=12, progress=False)
    third = sinklab.measure(model, probe="random", n=3, T=12, progress=False)
    assert first.summary["mean_alpha_1"] == second.summary["mean_alpha_1"] == third.summary["mean_alpha_1"]
