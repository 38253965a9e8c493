"""Sink tracking inside other trainers (transformers' Trainer, Lightning, a plain loop, DDP) and sweeps
submitted through submitit. The tracked numbers must equal `sinklab.measure` on the saved checkpoint."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import sinklab
from sinklab.errors import SinklabError
from sinklab.train.probe import sink_row

EPS = 0.13  # between a tiny random Llama's alpha_1 values, so Sink_1 is neither 0 nor 100


def tiny_llama(seed: int = 0):
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return AutoModelForCausalLM.from_config(cfg)


def ids(n: int, T: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 128, (n, T), generator=torch.Generator().manual_seed(seed))


def measured(folder, probe, **kw) -> dict:
    """`sinklab measure` of a saved checkpoint on the probe, as a tracked row."""
    return sink_row(sinklab.measure(str(folder), input_ids=probe, eps=EPS, progress=False, **kw).summary)


def rows_of(path: Path) -> dict[int, dict]:
    return {r["step"]: r for r in map(json.loads, path.read_text().splitlines())}


def test_import_sinklab_loads_no_trainer():
    code = ("import sys, sinklab; sinklab.SinkTracker; "
            "print(any(m.split('.')[0] in ('lightning', 'pytorch_lightning') or m == 'transformers.trainer' "
            "for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1])))
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("kwargs,message", [
    (dict(every=0), "every must be"), (dict(every=2.5), "every must be"), (dict(every=True), "every must be"),
    (dict(probe=torch.zeros(8, dtype=torch.long)), "shape (n, T)"), (dict(probe=torch.zeros(4, 1, dtype=torch.long)),
                                                                     "shape (n, T)"),
    (dict(probe=torch.zeros(2, 8)), "integer token ids"), (dict(probe=torch.full((2, 8), 500)), "beyond the model's vocab"),
    (dict(probe=torch.zeros(2, 100, dtype=torch.long)), "beyond the model's context"),
])
def test_bad_input_is_one_clear_error_at_construction(kwargs, message):
    args = {"probe": ids(2, 8), "every": 10, **kwargs}
    with pytest.raises(SinklabError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sinklab.SinkTracker(tiny_llama(), **args)


def test_an_unwritable_output_folder_is_refused_at_construction(tmp_path):
    from sinklab.integrations.transformers import SinkCallback

    (tmp_path / "file").write_text("x")
    with pytest.raises(SinklabError, match="is a file, not a folder"):
        sinklab.SinkTracker(tiny_llama(), probe=ids(2, 8), every=10, out=tmp_path / "file" / "sinks")
    with pytest.raises(SinklabError, match="is a file, not a folder"):
        SinkCallback(probe=ids(2, 8), every=10, out=tmp_path / "file")


def test_a_model_the_capture_cannot_measure_is_refused_by_name_at_construction():
    with pytest.raises(SinklabError, match="got Linear"):
        sinklab.SinkTracker(torch.nn.Linear(4, 4), probe=ids(2, 8), every=10)
    from transformers import MambaConfig, MambaForCausalLM

    mamba = MambaForCausalLM(MambaConfig(vocab_size=128, hidden_size=16, num_hidden_layers=1, state_size=4))
    with pytest.raises(SinklabError, match="has no softmax attention"):
        sinklab.SinkTracker(mamba, probe=ids(2, 8), every=10)


def test_the_tracker_leaves_the_model_and_the_rng_as_they_were(tmp_path):
    model = tiny_llama()
    model.train()
    model.model.layers[0].eval()  # a part the user keeps in eval on purpose
    tracker = sinklab.SinkTracker(model, probe=ids(4), every=3, out=tmp_path, eps=EPS)
    rng = torch.get_rng_state()
    assert [tracker.step(s) for s in (1, 2)] == [None, None]
    row = tracker(3)
    assert row["step"] == 3 and torch.equal(rng, torch.get_rng_state())
    assert model.training and not model.model.layers[0].training and model.model.layers[1].training
    assert model.config._attn_implementation == "sdpa" and all(p.grad is None for p in model.parameters())
    model.save_pretrained(tmp_path / "ckpt")
    assert row == {"step": 3, **measured(tmp_path / "ckpt", ids(4))}
    assert rows_of(tmp_path / "sinks.jsonl") == {3: row}
    assert tracker.close() == tmp_path / "sinks.png" and (tmp_path / "sinks.png").stat().st_size > 0


def test_compiled_and_autocast_models_measure_as_the_plain_model(tmp_path):
    model, probe = tiny_llama(), ids(4)
    plain = sinklab.SinkTracker(model, probe=probe, every=1, eps=EPS).step(1)
    compiled = torch.compile(model, backend="eager")
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the measurement runs in the weights' own dtype
        assert sinklab.SinkTracker(compiled, probe=probe, every=1, eps=EPS).step(1) == plain


def test_a_bf16_model_measures_as_its_bf16_checkpoint(tmp_path):
    model = tiny_llama().to(torch.bfloat16)
    row = sinklab.SinkTracker(model, probe=ids(4), every=1, eps=EPS).step(1)
    model.save_pretrained(tmp_path)
    assert row == {"step": 1, **measured(tmp_path, ids(4), dtype="bfloat16")}


@pytest.mark.slow  # a real Trainer run: about 5 s
def test_transformers_trainer_logs_the_sink_of_each_saved_checkpoint(tmp_path):
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from sinklab.integrations.transformers import SinkCallback

    class Seen(TrainerCallback):  # a reporting integration stands here: it sees what the Trainer logs
        logs = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.logs.append(dict(logs))

    probe = ids(8)
    data = [{"input_ids": x, "labels": x} for x in ids(120, seed=2)]
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=30, per_device_train_batch_size=4, save_steps=10,
                             logging_steps=10, report_to=[], learning_rate=1e-2, use_cpu=True, save_only_model=True,
                             disable_tqdm=True)
    trainer = Trainer(model=tiny_llama(), args=args, train_dataset=data, callbacks=[Seen()])
    trainer.add_callback(SinkCallback(probe=probe, every=10, trainer=trainer, eps=EPS))
    trainer.train()
    logged = {h["step"]: h for h in trainer.state.log_history if "sink/sink_1" in h}
    seen = [s for s in Seen.logs if "sink/sink_1" in s]
    assert sorted(logged) == [10, 20, 30] and len(seen) == 3
    assert any("loss" in h for h in trainer.state.log_history)  # the Trainer's own rows are still logged
    rows = rows_of(tmp_path / "sinks.jsonl")
    for step in (10, 20, 30):
        want = measured(tmp_path / f"checkpoint-{step}", probe)
        assert logged[step]["sink/sink_1"] == want["sink_1"] and rows[step] == {"step": step, **want}
        assert logged[step]["sink/mean_alpha_1"] == want["mean_alpha_1"]
    assert len({r["sink_1"] for r in rows.values()} | {r["mean_alpha_1"] for r in rows.values()}) > 2  # it moved
    assert (tmp_path / "sinks.png").exists()


@pytest.mark.slow  # a real Lightning run: about 5 s
def test_lightning_trainer_logs_the_sink_of_each_saved_checkpoint(tmp_path):
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    from sinklab.integrations.lightning import SinkCallback

    class LM(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = tiny_llama()

        def training_step(self, batch, batch_idx):
            return self.model(input_ids=batch, labels=batch).loss

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=1e-2)

    class Save(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, *args):
            if trainer.global_step % 10 == 0:
                pl_module.model.save_pretrained(tmp_path / f"step-{trainer.global_step}")

    probe = ids(8)
    trainer = L.Trainer(max_steps=30, accelerator="cpu", devices=1, logger=CSVLogger(tmp_path),
                        callbacks=[SinkCallback(probe=probe, every=10, eps=EPS), Save()], enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, log_every_n_steps=1)
    trainer.fit(LM(), torch.utils.data.DataLoader(ids(120, seed=2), batch_size=4))
    csv = (Path(trainer.log_dir) / "metrics.csv").read_text().splitlines()
    header = csv[0].split(",")
    logged = {int(r["step"]): r for r in (dict(zip(header, line.split(","))) for line in csv[1:])
              if r.get("sink/sink_1")}
    assert sorted(logged) == [10, 20, 30]  # once each, at the optimizer step measured
    rows = rows_of(Path(trainer.log_dir) / "sinks.jsonl")
    for step in (10, 20, 30):
        want = measured(tmp_path / f"step-{step}", probe)
        assert float(logged[step]["sink/sink_1"]) == want["sink_1"] and rows[step] == {"step": step, **want}
    assert len({r["mean_alpha_1"] for r in rows.values()}) == 3


@pytest.mark.slow  # two torchrun processes: about 15 s
def test_ddp_rank_zero_measures_and_no_rank_hangs(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parents[1]))
    script = Path(__file__).parent / "helpers" / "ddp_tracker.py"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script), str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = rows_of(tmp_path / "sinks.jsonl")
    assert sorted(rows) == [5, 10]
    assert rows[10] == {"step": 10, **measured(tmp_path / "final", torch.load(tmp_path / "probe.pt"))}


@pytest.mark.slow  # a real Trainer run
def test_without_the_trainer_the_values_join_that_steps_log(tmp_path):
    from transformers import Trainer, TrainingArguments

    from sinklab.integrations.transformers import SinkCallback

    data = [{"input_ids": x, "labels": x} for x in ids(40, seed=2)]
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=10, per_device_train_batch_size=4, logging_steps=100,
                             report_to=[], use_cpu=True, save_strategy="no", disable_tqdm=True)
    trainer = Trainer(model=tiny_llama(), args=args, train_dataset=data,
                      callbacks=[SinkCallback(probe=ids(4), every=5, eps=EPS)])
    trainer.train()
    logged = [h for h in trainer.state.log_history if "sink/sink_1" in h]
    assert [h["step"] for h in logged] == [5, 10] and all("loss" in h for h in logged)


@pytest.mark.slow  # two submitit jobs, one killed, then the rerun: about 30 s
def test_submitit_sweep_resumes_a_killed_job_and_trains_no_run_twice(tmp_path, monkeypatch, capsys):
    import signal
    import threading
    import time

    from sinklab.cli import main
    from sinklab.data.shards import prepare
    from sinklab.experiments import plan_runs, run_state, sweep
    from sinklab.experiments.launch import JOB_FILE, ClusterOptions

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[1]))
    (tmp_path / "a.txt").write_text("attention sinks appear in trained language models. " * 400)
    shards = str(tmp_path / "sh")
    prepare([str(tmp_path / "a.txt")], shards, "bytes", progress=False)
    sets = {"train.steps": 200, "train.seq_len": 32, "train.measure_every": 200, "train.eval_every": 200,
            "train.eval_batches": 1, "train.measure_n": 4, "train.measure_T": 32, "train.ckpt_every": 20,
            "train.device": "cpu"}
    out, only = tmp_path / "runs", ["baseline", "wd_0.5"]
    runs = plan_runs(["weight_decay"], "tiny", out, shards, only, sets)
    victim = runs[1]
    failure = []

    def first_sweep():
        try:
            sweep(["weight_decay"], "tiny", str(out), shards, only=only, extra=sets, launcher="submitit",
                  cluster=ClusterOptions(cluster="local", gpus_per_run=0, timeout_min=10))
        except SinklabError as e:
            failure.append(str(e))

    thread = threading.Thread(target=first_sweep)
    thread.start()
    deadline = time.time() + 60
    while time.time() < deadline and run_state(victim) != "partial":  # a checkpoint to resume from, not yet done
        time.sleep(0.02)
    assert run_state(victim) == "partial"
    os.kill(int(json.loads((victim.folder / JOB_FILE).read_text())["pid"]), signal.SIGKILL)
    thread.join(timeout=90)
    assert failure and victim.change in failure[0] and runs[0].change not in failure[0]  # named by run
    assert run_state(runs[0]) == "done" and run_state(victim) == "partial"
    finished = (runs[0].folder / "metrics.jsonl").read_text()
    capsys.readouterr()
    args = ["sweep", "weight_decay", "--preset", "tiny", "--data", shards, "--out", str(out), "--only", ",".join(only),
            "--launcher", "submitit", "--cluster", "local", "--slurm-gpus", "0", "--slurm-time", "10",
            "--set", *(f"{k}={v}" for k, v in sets.items())]
    assert main(args) == 0
    assert "1 done, 1 to run" in capsys.readouterr().out
    assert all(run_state(r) == "done" for r in runs)
    assert (runs[0].folder / "metrics.jsonl").read_text() == finished  # the finished run was left alone
    steps = [json.loads(line)["step"] for line in (victim.folder / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 200  # every logged step once
    logs = "".join(p.read_text() for p in (out / "submitit").glob("*_log.out"))
    for r in runs:  # each run started once; the killed one resumed once
        assert logs.count(f"starting {r.folder}\n") == 1
    assert logs.count(f"resuming {victim.folder}\n") == 1 and logs.count(f"resuming {runs[0].folder}\n") == 0
