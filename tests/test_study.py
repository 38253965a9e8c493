"""`sinklab study` on the CPU: a piece stopped at its deadline and rerun ends with the rows of one uninterrupted
study, and no finished run is trained twice."""
import json

import pytest

from sinklab.cli import main
from sinklab.errors import SinklabError
from sinklab.experiments.study import (SCIENCE_FIELDS, STOPPED_EXIT, claim_verdicts, plan_study, run_study,
                                       slots_for, write_records)
from sinklab.train.runs import checkpoints

RUN = {"train.steps": 120, "train.seq_len": 32, "train.measure_every": 40, "train.eval_every": 40,
       "train.eval_batches": 1, "train.measure_n": 4, "train.measure_T": 32, "train.ckpt_every": 20,
       "train.device": "cpu"}


def _study(folder, shards):
    return plan_study(["weight_decay"], "tiny", folder, shards, seeds=2, reference_seeds=2, extra=RUN,
                      only=["baseline", "wd_0.5"])


def _science(path):
    return [{k: r[k] for k in SCIENCE_FIELDS} for r in map(json.loads, path.read_text().splitlines())]


def test_the_plan_gives_each_change_its_seeds_and_the_baseline_its_own():
    runs = plan_study(["weight_decay"], "tiny", __import__("pathlib").Path("r"), "d", seeds=2, reference_seeds=3,
                      only=["baseline", "wd_0.5"])
    seeds = sorted((r.change, r.overrides["train.seed"]) for r in runs)
    assert seeds == [("baseline", 0), ("baseline", 1), ("baseline", 2), ("wd_0.5", 0), ("wd_0.5", 1)]
    assert len({r.folder for r in runs}) == 5  # the seed is part of each run's folder key
    with pytest.raises(SinklabError, match="at least 1"):
        plan_study(["weight_decay"], "tiny", __import__("pathlib").Path("r"), "d", seeds=0)


@pytest.mark.slow  # trains 8 tiny runs in subprocesses
def test_a_study_stopped_at_its_deadline_and_rerun_matches_one_uninterrupted_study(shards, tmp_path):
    whole = _study(tmp_path / "whole", shards)
    done = run_study(whole, 1e9, slots_for(whole, 2, None), tmp_path / "whole.jsonl", echo=lambda *_: None)
    assert done.complete and len(done.finished) == 4

    pieces = _study(tmp_path / "pieces", shards)
    first_ckpt = lambda: any(checkpoints(r.folder) for r in pieces)  # noqa: E731  stop mid-run, once one is kept
    first = run_study(pieces, 1e9, slots_for(pieces, 2, None), tmp_path / "pieces.jsonl", echo=lambda *_: None,
                      stop_when=first_ckpt)
    assert first.stopped and not first.failed and not first.complete
    stopped_at = {r.change + str(r.overrides["train.seed"]): json.loads((checkpoints(r.folder)[0] / "sinklab.json")
                  .read_text())["step"] for r in pieces if checkpoints(r.folder)}
    assert any(0 < s < 120 for s in stopped_at.values()), stopped_at  # a run was stopped between checkpoints' steps

    second = run_study(pieces, 1e9, slots_for(pieces, 2, None), tmp_path / "pieces.jsonl", echo=lambda *_: None)
    assert second.complete
    assert not set(first.finished) & set(second.finished)  # nothing finished is trained again
    assert sorted(first.finished + second.finished) == sorted(done.finished)
    assert _science(tmp_path / "pieces.jsonl") == _science(tmp_path / "whole.jsonl")
    resumed = [r for r in pieces if json.loads((r.folder / "study_time.json").read_text())["pieces"] == 2]
    assert resumed and all("resum" in (r.folder / "train.log").read_text().lower() for r in resumed)


@pytest.mark.slow
def test_the_command_stops_with_exit_3_and_a_rerun_completes_with_verdicts(shards, tmp_path, capsys):
    args = ["study", "weight_decay", "--preset", "tiny", "--data", shards, "--out", str(tmp_path / "runs"),
            "--seeds", "1", "--reference-seeds", "1", "--per-gpu", "2", "--set",
            *[f"{k}={v}" for k, v in {**RUN, "train.steps": 60}.items()]]
    assert main([*args, "--deadline", "0.001"]) == STOPPED_EXIT
    assert "rerun the same command" in capsys.readouterr().out
    assert main(args) == 0
    out = capsys.readouterr().out
    records = tmp_path / "runs" / "tiny" / "study.jsonl"
    rows = [json.loads(line) for line in records.read_text().splitlines()]
    assert len(rows) == 6 and {r["seed"] for r in rows} == {0}
    assert all(r["passes"] and r["passes"] > 0 and r["wall_s"] > 0 and r["gpu_s"] is None for r in rows)  # CPU slots
    assert "weight_decay: " in out and f"records: {records} (6 finished runs)" in out


def test_records_hold_only_finished_runs_and_verdicts_need_their_seeds(tmp_path):
    runs = plan_study(["weight_decay"], "tiny", tmp_path, "d", seeds=2, reference_seeds=3)
    assert write_records(runs, tmp_path / "r.jsonl") == [] and (tmp_path / "r.jsonl").read_text() == ""
    rows = [{"suite": "weight_decay", "change": c, "seed": s, "sink_1": v, "sink_star": None,
             "largest_sink_position": 1} for c, s, v in [("baseline", 0, 10.0), ("baseline", 1, 11.0),
                                                         ("baseline", 2, 12.0), ("wd_0.5", 0, 30.0),
                                                         ("wd_0.5", 1, 31.0)]]
    verdicts = {v["claim"]: v for v in claim_verdicts(rows, ["weight_decay"])}
    assert any(v["verdict"] == "holds" for v in verdicts.values())
    assert any(v["verdict"] == "not run" and "seed(s) measured" in v["evidence"] for v in verdicts.values())


def test_bad_study_options_are_one_line(shards, tmp_path, capsys):
    for bad, named in [(["--deadline", "0"], "--deadline"), (["--per-gpu", "0"], "--per-gpu"),
                       (["--seeds", "0"], "--seeds")]:
        assert main(["study", "weight_decay", "--preset", "tiny", "--data", shards, "--out", str(tmp_path), *bad,
                     "--set", "train.device=cpu"]) == 2
        assert named in capsys.readouterr().err
    assert main(["study", "--preset", "tiny", "--out", str(tmp_path)]) == 2
    assert "--data" in capsys.readouterr().err
