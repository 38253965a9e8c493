"""Suites, sweeps and scorecards at the `tiny` preset on CPU."""
import json

import pytest

from sinklab.errors import SinklabError
from sinklab.experiments import failure_reason, load_suite, plan_runs, run_state, suite_names, sweep
from sinklab.experiments.scorecard import check_claim, scorecard, scorecard_markdown

FAST = {"train.steps": 4, "train.seq_len": 32, "train.measure_every": 4, "train.eval_every": 4,
        "train.eval_batches": 1, "train.measure_n": 4, "train.measure_T": 32, "train.ckpt_every": 4}

REQUIRED = {"lr", "weight_decay", "batch_size", "data_amount", "random_first_tokens", "fixed_token", "prefix_lm",
            "sliding_window", "positional", "ffn", "norm", "heads", "attention_bias", "attention_op", "one_b", "modern",
            "sparse"}


def test_every_group_of_the_paper_is_a_suite_with_published_values():
    assert REQUIRED <= set(suite_names())
    for name in suite_names():
        s = load_suite(name)
        assert s["changes"] and s.get("source")
        if name not in ("modern", "sparse"):  # designs the paper did not test
            assert any(c.get("paper") for c in s["changes"]), name


@pytest.mark.slow  # trains every suite's runs
def test_every_suite_runs_at_tiny_and_its_scorecard_renders(shards, tmp_path):
    runs = sweep(suite_names(), "tiny", str(tmp_path), shards, extra=FAST, progress=False)
    assert all(run_state(r) == "done" for r in runs)
    result = scorecard(suite_names(), "tiny", str(tmp_path), extra=FAST)
    assert len(result["rows"]) == sum(len(load_suite(n)["changes"]) for n in suite_names())
    assert all(r["sink_1"] is not None and r["step"] == 4 for r in result["rows"])
    assert all(c["verdict"] in ("holds", "does not hold", "inconclusive") for c in result["claims"])
    folder = result["folder"]
    assert (folder / "scorecard.html").exists() and (folder / "scorecard.csv").exists()
    assert (folder / "weight_decay_sink.png").exists() and (folder / "weight_decay_steps.png").exists()
    assert "| weight_decay | wd_0.5 |" in scorecard_markdown(result)


def test_identical_runs_are_trained_once(shards, tmp_path):
    runs = plan_runs(["weight_decay", "positional"], "tiny", tmp_path, shards, extra=FAST)
    baselines = {r.folder for r in runs if r.change == "baseline"}
    assert len(baselines) == 1


def test_presets_never_share_a_run_folder(shards, tmp_path):
    a = plan_runs(["norm"], "tiny", tmp_path, shards, extra=FAST)
    b = plan_runs(["norm"], "quick-60m", tmp_path, shards)
    assert not {r.folder for r in a} & {r.folder for r in b}
    assert all(r.folder.parent.name == "tiny" for r in a) and all(r.folder.parent.name == "quick-60m" for r in b)


@pytest.mark.slow  # several trainings
def test_interrupted_sweep_completes_only_what_is_missing(shards, tmp_path, capsys):
    extra = dict(FAST, **{"train.steps": 8, "train.ckpt_every": 4})
    sweep(["norm"], "tiny", str(tmp_path), shards, extra=extra, progress=False)
    runs = plan_runs(["norm"], "tiny", tmp_path, shards, extra=extra)
    done, redo = runs
    # simulate a kill: one run lost its final checkpoint (back to step 4), the other finished
    meta = json.loads((redo.folder / "ckpt" / "sinklab.json").read_text())
    meta["step"] = 4
    (redo.folder / "ckpt" / "sinklab.json").write_text(json.dumps(meta))
    before = (done.folder / "metrics.jsonl").read_text()
    capsys.readouterr()
    sweep(["norm"], "tiny", str(tmp_path), shards, extra=extra, progress=False)
    out = capsys.readouterr().out
    assert "1 done, 1 to run" in out
    assert (done.folder / "metrics.jsonl").read_text() == before  # the finished run was not touched
    assert run_state(redo) == "done"


def test_claim_checks():
    rows = {"a": {"sink_1": 5.0, "sink_star": 40.0, "largest_sink_position": 2, "largest_sink": 30.0},
            "b": {"sink_1": 1.0, "sink_star": None, "largest_sink_position": 1, "largest_sink": 1.0}}
    assert check_claim({"text": "", "greater": ["a", "b"]}, rows)[0] == "holds"
    assert check_claim({"text": "", "below": ["a", 1.0]}, rows)[0] == "does not hold"
    assert check_claim({"text": "", "largest_at": ["a", 2]}, rows)[0] == "holds"
    assert check_claim({"text": "", "star_over_first": "a"}, rows)[0] == "holds"
    assert check_claim({"text": "", "greater": ["a", "missing"]}, rows)[0] == "not run"


@pytest.mark.slow  # torchrun subprocesses
def test_sweep_launches_runs_through_torchrun(shards, tmp_path, monkeypatch):
    """The torchrun mode of `sinklab sweep` (one 2-process group per run), here on CPU with gloo:
    both runs finish, with the global batch split over the two ranks."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    extra = {**FAST, "train.global_batch": 4, "train.micro_batch": 2, "train.device": "cpu"}
    runs = sweep(["weight_decay"], "tiny", str(tmp_path), shards, only=["baseline", "wd_0.5"], gpus=2, torchrun=2,
                 extra=extra, progress=False)
    assert len(runs) == 2 and all(run_state(r) == "done" for r in runs)
    for r in runs:
        log = (r.folder / "train.log").read_text()
        assert log.count("final:") == 1 and log.count("report:") == 1  # rank 0 speaks for the run
        assert json.loads((r.folder / "config.json").read_text())["world_size"] == 2


@pytest.mark.parametrize("log, reason", [
    ("run folder: x\nsinklab: error: data vocabulary 300 is larger than model.vocab_size=256\n" * 2
     + "Traceback (most recent call last):\ntorch.distributed.elastic.multiprocessing.errors.ChildFailedError: \n",
     "sinklab: error: data vocabulary 300 is larger than model.vocab_size=256"),
    ("Traceback (most recent call last):\n  File \"x.py\", line 1\nRuntimeError: CUDA error: out of memory\n",
     "RuntimeError: CUDA error: out of memory"),
    ("run folder: x\nterminate called without an active exception\nW1207 ... closing signal SIGTERM\n"
     "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: \n",
     "terminate called without an active exception"),
    ("run folder: x\n", None),
])
def test_a_failed_runs_reason_is_read_from_its_log(log, reason, tmp_path):
    (tmp_path / "train.log").write_text(log)
    assert failure_reason(tmp_path / "train.log") == reason


def test_a_parallel_sweep_asking_for_absent_gpus_is_refused(shards, tmp_path, monkeypatch):
    monkeypatch.setattr("torch.cuda.device_count", lambda: 0)
    with pytest.raises(SinklabError, match="--gpus 2: PyTorch sees 0 CUDA GPU"):
        sweep(["weight_decay"], "tiny", str(tmp_path), shards, only=["baseline"], gpus=2, extra=FAST, progress=False)
    assert not any(tmp_path.rglob("config.json"))  # refused before the first run
