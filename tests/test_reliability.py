"""No traceback, no silent wrong result, no lost work: data, configs, run folders, resume, scorecard."""
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import sinklab

from sinklab.cli import main
from sinklab.data.shards import open_split, prepare

ROOT = Path(__file__).resolve().parents[1]
FAST = ["train.seq_len=32", "train.log_every=1", "train.ckpt_every=5", "train.eval_every=1000",
        "train.measure_every=1000", "train.measure_n=4", "train.measure_T=32"]


def one_error(capsys, code, *words):
    """Exit 2, exactly one `sinklab: error:` line, no traceback, each word in the line."""
    err = capsys.readouterr().err.splitlines()
    lines = [line for line in err if line.startswith("sinklab: error:")]
    assert code == 2 and len(lines) == 1, err
    assert not any("Traceback" in line for line in err)
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("text")
    (d / "a.txt").write_text("attention sinks appear in trained language models. " * 300)
    out = tmp_path_factory.mktemp("shards")
    prepare([str(d / "a.txt")], out, "bytes", progress=False)
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="module")
def finished_run(corpus, tmp_path_factory):
    """10 steps with checkpoints at 5 (ckpt.prev) and 10 (ckpt)."""
    out = tmp_path_factory.mktemp("runs") / "run"
    assert main(["train", "tiny", f"train.data={corpus}", f"train.out={out}", "train.steps=10", *FAST]) == 0
    return out


def _steps(out: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def _losses(out: Path) -> dict:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows}


# -- data -----------------------------------------------------------------------------------------

def test_prepare_into_an_existing_file_fails_before_tokenising(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("hello " * 100)
    (tmp_path / "file").write_text("x")
    one_error(capsys, main(["data", "prepare", str(tmp_path / "t.txt"), "--out", str(tmp_path / "file")]),
              "is a file, not a folder", str(tmp_path / "file"))
    one_error(capsys, main(["data", "prepare", str(tmp_path / "t.txt"), "--out", str(tmp_path / "file" / "sub")]),
              "is a file, not a folder")
    one_error(capsys, main(["data", "synthetic", "--out", str(tmp_path / "file"), "--tokens", "1000"]),
              "is a file, not a folder")


def test_synthetic_with_no_tokens_is_an_error(tmp_path, capsys):
    one_error(capsys, main(["data", "synthetic", "--out", str(tmp_path / "s"), "--tokens", "0"]), "--tokens", "got 0")
    assert not (tmp_path / "s").exists()


def test_empty_or_truncated_shards_are_caught_when_opened(corpus, tmp_path, capsys):
    from sinklab.data.synthetic import write
    from sinklab.errors import SinklabError

    shards = _copy(corpus, tmp_path / "sh")
    n = json.loads((shards / "manifest.json").read_text())["tokens"]["train"]
    with open(shards / "train.bin", "r+b") as f:
        f.truncate((n - 100) * 2)
    with pytest.raises(SinklabError, match=r"has [\d,]+ bytes but its manifest says [\d,]+ uint16 tokens"):
        open_split(shards, "train")
    code = main(["train", "tiny", f"train.data={shards}", f"train.out={tmp_path / 'run'}", *FAST])
    one_error(capsys, code, "train.bin", "truncated")
    assert not (tmp_path / "run").exists()  # nothing written before the check
    write(str(tmp_path / "syn"), 1024, seq_len=64)
    (tmp_path / "syn" / "train.bin").write_bytes(b"")
    with pytest.raises(SinklabError, match="is empty"):
        open_split(tmp_path / "syn", "train")


@pytest.mark.parametrize("suffix", [".txt", ".jsonl"])
def test_non_utf8_input_names_the_file_and_offset_unless_replace(tmp_path, capsys, suffix):
    bad = tmp_path / f"latin1{suffix}"
    body = "caf\u00e9 au lait, " * 50
    text = json.dumps({"text": body}, ensure_ascii=False) + "\n" if suffix == ".jsonl" else body
    raw = text.encode("latin-1")
    bad.write_bytes(raw)
    code = main(["data", "prepare", str(bad), "--out", str(tmp_path / "o")])
    one_error(capsys, code, str(bad), f"byte {raw.index(0xE9)}", "0xe9", "--encoding-errors replace")
    assert not (tmp_path / "o").exists()
    assert main(["data", "prepare", str(bad), "--out", str(tmp_path / "o"), "--encoding-errors", "replace"]) == 0


def test_non_utf8_probe_file_is_an_error_naming_the_offset(tmp_path):
    from sinklab.errors import SinklabError
    from sinklab.measure.probes import load_texts

    bad = tmp_path / "probe.txt"
    bad.write_bytes(b"plain text\n\nthen \xff here")
    with pytest.raises(SinklabError, match=r"probe.txt is not UTF-8 text: byte 17 is 0xff"):
        load_texts(str(bad))
    assert "then \ufffd here" in load_texts(str(bad), encoding_errors="replace")


# -- config values --------------------------------------------------------------------------------

@pytest.mark.parametrize("override,words", [
    ("train.steps=abc", ("train.steps='abc'", "must be an integer")),
    ("train.lr=-1", ("train.lr=-1.0", "must be > 0")),
    ("train.global_batch=0", ("train.global_batch=0", "must be >= 1")),
    ("train.beta2=1", ("train.beta2=1.0", "< 1")),
    ("train.random_tokens=[3,1]", ("random_tokens=[3, 1]",)),
    ("train.compile=maybe", ("train.compile='maybe'", "true or false")),
    ("model.d_model=abc", ("model.d_model='abc'", "must be an integer")),
    ("model.norm_eps=0", ("model.norm_eps=0.0", "must be > 0")),
])
def test_config_values_are_checked_by_type_and_range(override, words, corpus, tmp_path, capsys):
    code = main(["train", "tiny", f"train.data={corpus}", f"train.out={tmp_path / 'run'}", override])
    one_error(capsys, code, *words)
    assert not (tmp_path / "run").exists()


def test_integral_floats_are_accepted_for_integer_fields():
    from sinklab.train.config import resolve_configs

    mc, tc = resolve_configs("tiny", {"train.steps": 1e3, "model.rope_theta": 10000})
    assert tc.steps == 1000 and isinstance(tc.steps, int) and isinstance(mc.rope_theta, float)


def test_sweep_set_is_validated_before_the_first_run(corpus, tmp_path, capsys):
    code = main(["sweep", "weight_decay", "--preset", "tiny", "--data", str(corpus), "--out", str(tmp_path),
                 "--set", "train.steps=abc"])
    line = one_error(capsys, code, "train.steps='abc'")
    assert "[1/" not in capsys.readouterr().out + line
    assert not any(tmp_path.iterdir())


# -- run folders ----------------------------------------------------------------------------------

@pytest.mark.slow  # reads the 10-step finished_run
def test_a_run_folder_is_never_overwritten_without_resume_or_overwrite(finished_run, corpus, tmp_path, capsys):
    run = _copy(finished_run, tmp_path / "run")
    before = (run / "metrics.jsonl").read_text()
    code = main(["train", "tiny", f"train.data={corpus}", f"train.out={run}", "train.steps=10", *FAST])
    one_error(capsys, code, str(run), "already holds a run (checkpoint at step 10 of 10)", "--resume", "--overwrite")
    assert (run / "metrics.jsonl").read_text() == before
    assert main(["train", "tiny", f"train.data={corpus}", f"train.out={run}", "train.steps=5", *FAST,
                 "--overwrite"]) == 0
    assert _steps(run) == [1, 2, 3, 4, 5] and not (run / "ckpt.prev").exists()


def test_the_default_run_folder_is_unique_per_config_and_stable_across_resume(corpus):
    from sinklab.train.config import resolve_configs

    base = {"train.data": str(corpus)}
    a = resolve_configs("tiny", base)[1].out
    assert a.startswith("runs/tiny-") and a != "runs/run"
    assert resolve_configs("tiny", {**base, "train.lr": 1e-3})[1].out != a      # another run
    assert resolve_configs("tiny", {**base, "model.score": "sigmoid"})[1].out != a
    assert resolve_configs("tiny", {**base, "train.steps": 900})[1].out == a    # the same run, longer


def test_resume_without_a_checkpoint_is_one_line(corpus, tmp_path, capsys):
    code = main(["train", "tiny", f"train.data={corpus}", f"train.out={tmp_path / 'new'}", *FAST, "--resume"])
    one_error(capsys, code, "nothing to resume")


# -- resume ---------------------------------------------------------------------------------------

def _resume(run, corpus, steps=10, *extra):
    return main(["train", "tiny", f"train.data={corpus}", f"train.out={run}", f"train.steps={steps}", *FAST,
                 *extra, "--resume"])


@pytest.mark.slow  # reads the 10-step finished_run
@pytest.mark.parametrize("damage", ["truncate_weights", "corrupt_optimizer"])
def test_a_corrupt_latest_checkpoint_falls_back_to_the_one_before(damage, finished_run, corpus, tmp_path, capsys):
    run = _copy(finished_run, tmp_path / "run")
    if damage == "truncate_weights":
        path = run / "ckpt" / "model.safetensors"
        path.write_bytes(path.read_bytes()[:1000])
    else:
        (run / "ckpt" / "optimizer.pt").write_bytes(os.urandom(300))
    capsys.readouterr()
    assert _resume(run, corpus, 12) == 0
    out = capsys.readouterr().out
    assert "passed over checkpoint" in out and "resuming from" in out and "(step 5)" in out
    assert _steps(run) == list(range(1, 13))  # rows 6-10 of the lost checkpoint dropped, each step once
    want, got = _losses(finished_run), _losses(run)
    assert [got[s] for s in range(1, 11)] == [want[s] for s in range(1, 11)]  # steps 6-10 recomputed from step 5


@pytest.mark.slow  # reads the 10-step finished_run
def test_no_checkpoint_that_loads_is_one_line(finished_run, corpus, tmp_path, capsys):
    run = _copy(finished_run, tmp_path / "run")
    for ck in ("ckpt", "ckpt.prev"):
        (run / ck / "optimizer.pt").write_bytes(b"not a torch file")
    one_error(capsys, _resume(run, corpus), "no checkpoint loads whole", "ckpt (step 10)", "ckpt.prev (step 5)",
              "optimizer.pt")


@pytest.mark.slow  # reads the 10-step finished_run
def test_a_changed_config_field_names_the_field_and_both_values(finished_run, corpus, tmp_path, capsys):
    run = _copy(finished_run, tmp_path / "run")
    one_error(capsys, _resume(run, corpus, 10, "model.d_model=128"), "model.d_model is 128 here but 64 in the checkpoint")
    one_error(capsys, _resume(run, corpus, 10, "train.lr=0.01"), "train.lr is 0.01 here but 0.003 in the checkpoint")
    assert _resume(run, corpus, 10, "train.log_every=2") == 0  # how often it logs may change


@pytest.mark.slow
def test_sigkill_during_a_checkpoint_write_then_resume_gives_the_same_curve_each_step_once(corpus, tmp_path):
    """The process is killed by SIGKILL while writing its step-15 checkpoint (model.safetensors
    written, optimizer.pt half written); --resume continues from step 10, drops the rows 11-15 it
    had logged, and the losses equal an uninterrupted run's, each step logged once."""
    args = ["train", "tiny", f"train.data={corpus}", "train.steps=20", "train.random_tokens=[1,3]", *FAST]
    assert main([*args, f"train.out={tmp_path / 'ref'}"]) == 0
    run = tmp_path / "run"
    killer = (
        "import os, signal, sys, torch\n"
        "real = torch.save\n"
        "calls = {'n': 0}\n"
        "def save(obj, f, *a, **k):\n"
        "    if str(f).endswith('optimizer.pt'):\n"
        "        calls['n'] += 1\n"
        "        if calls['n'] == 3:\n"
        "            real(obj, f, *a, **k)\n"
        "            data = open(f, 'rb').read()\n"
        "            open(f, 'wb').write(data[: len(data) // 2])\n"
        "            os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return real(obj, f, *a, **k)\n"
        "torch.save = save\n"
        "from sinklab.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n")
    env = dict(os.environ, SINKLAB_NO_PROGRESS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", killer, *args, f"train.out={run}"], env=env, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert (run / "ckpt.tmp" / "model.safetensors").exists() and not (run / "ckpt.tmp" / "COMPLETE").exists()
    assert max(_steps(run)) == 15  # logged past the checkpoint it will resume from
    done = subprocess.run([sys.executable, "-m", "sinklab.cli", *args, f"train.out={run}", "--resume"], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "dropped 5 logged row(s) past step 10" in done.stdout
    assert _steps(run) == list(range(1, 21))
    assert _losses(run) == _losses(tmp_path / "ref")


@pytest.mark.slow  # reads the 10-step finished_run
def test_report_skips_a_metrics_line_cut_short(finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path / "run")
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 11, "loss": 4.')
    assert main(["report", str(run), "--no-measure"]) == 0
    assert "cut short" in capsys.readouterr().out
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join([lines[0], "{broken", *lines[1:]]) + "\n")
    one_error(capsys, main(["report", str(run), "--no-measure"]), "line 2", "not a metrics row")


# -- scorecard ------------------------------------------------------------------------------------

def _fake_run(folder: Path, sink: float, steps: int = 150):
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text(json.dumps({"step": steps, "loss": 3.0, "val_loss": 3.1, "sink_1": sink,
                                                      "largest_sink_position": 1, "largest_sink": sink}) + "\n")
    (folder / "ckpt").mkdir()
    (folder / "ckpt" / "COMPLETE").write_text(str(steps))
    (folder / "ckpt" / "sinklab.json").write_text(json.dumps({"step": steps, "train": {"steps": steps}}))


def test_scorecard_is_inconclusive_when_the_baseline_has_no_sink(tmp_path):
    from sinklab.experiments import plan_runs
    from sinklab.experiments.scorecard import NO_SINK_BELOW, RULE, scorecard, scorecard_markdown

    extra = {"train.steps": 150}
    for r in plan_runs(["weight_decay"], "tiny", tmp_path, "", extra=extra):
        _fake_run(r.folder, 0.0)
    result = scorecard(["weight_decay"], "tiny", str(tmp_path), extra=extra)
    assert {c["verdict"] for c in result["claims"]} == {"inconclusive"}
    assert "baseline Sink_1 0.00 %" in result["claims"][1]["evidence"] and NO_SINK_BELOW == 1.0
    assert RULE in scorecard_markdown(result)
    for r in plan_runs(["weight_decay"], "tiny", tmp_path, "", extra=extra):  # a baseline with a sink: judged
        (r.folder / "metrics.jsonl").write_text(json.dumps({"step": 150, "sink_1": 0.2 if r.change == "wd_5" else 20.0})
                                                + "\n")
    verdicts = [c["verdict"] for c in scorecard(["weight_decay"], "tiny", str(tmp_path), extra=extra)["claims"]]
    assert verdicts == ["does not hold", "holds"]


@pytest.mark.slow  # a sweep, then its scorecard
def test_the_command_a_sweep_prints_reproduces_its_scorecard(corpus, tmp_path, capsys):
    import shlex

    args = ["sweep", "norm", "--preset", "tiny", "--data", str(corpus), "--out", str(tmp_path / "sw"), "--only",
            "baseline", "--set", "train.steps=4", "train.seq_len=32", "train.measure_n=4", "train.measure_T=32",
            "train.eval_batches=1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    printed = out.split("done; `")[1].split("`")[0]
    assert "--set train.steps=4" in printed
    words = shlex.split(printed)
    assert words[:2] == ["sinklab", "scorecard"]
    assert main(words[1:]) == 0
    table = capsys.readouterr().out
    assert "| norm | baseline | 4 |" in table


# -- no result lost, nothing replaced silently, and run folders read as runs -----------------------

def _measure_args(model, out) -> list[str]:
    return ["measure", "--model", str(model), "--probe", "random", "--n", "2", "--T", "16", "--no-figures",
            "--out", str(out)]


def test_measure_refuses_an_unwritable_out_before_measuring(tiny_hf_folders, capsys):
    one_error(capsys, main(_measure_args(tiny_hf_folders["llama"], "/proc/x")), "/proc/x")
    assert "Sink" not in capsys.readouterr().out  # nothing was measured, so nothing was lost


def test_a_second_measure_into_one_folder_needs_overwrite(tiny_hf_folders, tmp_path, capsys):
    out = tmp_path / "m"
    assert main(_measure_args(tiny_hf_folders["llama"], out)) == 0
    first = (out / "summary.json").read_text()
    capsys.readouterr()
    one_error(capsys, main(_measure_args(tiny_hf_folders["llama"], out)), str(out), "--overwrite")
    assert (out / "summary.json").read_text() == first
    assert main(_measure_args(tiny_hf_folders["llama"], out) + ["--overwrite"]) == 0


def test_stream_eval_checks_its_out_before_scoring(tiny_llama_with_tokenizer, tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("attention sinks appear in trained language models . " * 40)
    (tmp_path / "file").write_text("x")
    base = ["stream", "--model", tiny_llama_with_tokenizer, "--eval", str(text), "--tokens", "64",
            "--cache-size", "16", "--n-sink", "2", "--policies", "sink"]
    for bad in ("/proc/x", str(tmp_path / "file")):
        one_error(capsys, main(base + ["--out", bad]), bad)
    assert main(base + ["--out", str(tmp_path / "s")]) == 0
    capsys.readouterr()
    one_error(capsys, main(base + ["--out", str(tmp_path / "s")]), "--overwrite")
    assert main(base + ["--out", str(tmp_path / "s"), "--overwrite"]) == 0


def test_data_prepare_never_replaces_prepared_data_silently(corpus, tmp_path, capsys):
    src = tmp_path / "small.txt"
    src.write_text("a few words. " * 5)
    one_error(capsys, main(["data", "prepare", str(src), "--out", str(corpus), "--tokenizer", "bytes"]),
              str(corpus), "--overwrite")
    copy = _copy(corpus, tmp_path / "copy")
    assert main(["data", "prepare", str(src), "--out", str(copy), "--tokenizer", "bytes", "--overwrite"]) == 0
    assert json.loads((copy / "manifest.json").read_text())["documents"] == 1


def test_a_run_folder_measures_at_its_newest_checkpoint(finished_run):
    result = sinklab.measure(str(finished_run), probe="random", n=2, T=16, progress=False)
    assert result.summary["model"].endswith("ckpt")


def test_a_run_folder_without_a_checkpoint_that_loads_is_one_line(finished_run, tmp_path, capsys):
    bare = _copy(finished_run, tmp_path / "bare")
    for name in ("ckpt", "ckpt.prev", "checkpoints"):
        shutil.rmtree(bare / name, ignore_errors=True)
    one_error(capsys, main(_measure_args(bare, tmp_path / "m1")), str(bare), "run folder", "no complete checkpoint")
    broken = _copy(finished_run, tmp_path / "broken")
    (broken / "ckpt" / "model.safetensors").write_bytes(b"not safetensors")
    one_error(capsys, main(_measure_args(broken, tmp_path / "m2")), "newest checkpoint does not load", "ckpt.prev")


@pytest.mark.parametrize("spec", ["runs/missing", "missing.pt", "weights.pth", "./missing"])
def test_a_missing_local_path_is_not_tried_on_the_hub(spec, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the hub would be tried (and retried) if it were
    (tmp_path / "runs").mkdir()
    one_error(capsys, main(_measure_args(spec, tmp_path / "m")), "does not exist", spec)
