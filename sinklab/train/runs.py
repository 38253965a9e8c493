"""Run folders: the default run name, what may overwrite a run, resuming from the newest checkpoint
that loads, and the metrics log a resumed run continues.

A run folder holds `ckpt/` (the latest checkpoint) and `ckpt.prev/` (the one before), so a
checkpoint that no longer loads (a truncated file, a corrupt optimizer state) costs one checkpoint
interval, not the run.
"""
from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import SinklabError
from ..files import read_metrics
from ..model.checkpoint import CHECKPOINT_NAMES, complete_checkpoints

# what marks a folder as holding a run, and what --overwrite removes (nothing else in the folder)
RUN_MARKERS = ("metrics.jsonl", "config.json", *CHECKPOINT_NAMES)
RUN_OUTPUTS = (*RUN_MARKERS, "ckpt.tmp", "checkpoints", "final_measure", "report.html", "sink_vs_step.png", "tb")
# train fields a resumed run may change: where it runs, how often it logs, evaluates, measures and
# saves, and how long it goes on. Every other field shapes the trajectory and must match.
RESUME_FREE = ("out", "data", "steps", "compile", "device", "parallel", "ddp_graph", "micro_batch", "log_every",
               "eval_every", "eval_batches", "measure_every", "measure_n", "measure_T", "measure_probe",
               "measure_T_long", "ckpt_every", "keep_every", "tensorboard")
# what a checkpoint file raises when it is truncated or overwritten with something else
# (random bytes can reach the legacy unpickler, which then raises IndexError, AttributeError or OverflowError)
_CORRUPT = (OSError, RuntimeError, ValueError, KeyError, TypeError, EOFError, IndexError, AttributeError,
            OverflowError, pickle.UnpicklingError,
            json.JSONDecodeError)


def default_run_folder(base: str, model: dict, train: dict) -> str:
    """runs/<preset or config name>-<hash of what shapes the run>: two different runs never share a
    folder, and a run resumed with a longer `steps` or another logging cadence finds its own."""
    shaping = {"model": model, "train": {k: v for k, v in train.items() if k not in RESUME_FREE}}
    key = hashlib.sha1(json.dumps(shaping, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return str(Path("runs") / f"{Path(base).stem}-{key}")


checkpoints = complete_checkpoints  # a run folder's complete checkpoints, newest first


def check_run_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to replace a run without --overwrite, and to resume one that has no checkpoint."""
    if resume and overwrite:
        raise SinklabError("--resume continues the run in train.out and --overwrite replaces it: pass one")
    holds_run = any((out / name).exists() for name in RUN_MARKERS)
    if resume and not checkpoints(out):
        what = "a run without a complete checkpoint" if holds_run else "no run"
        raise SinklabError(f"--resume: {out} holds {what}, so there is nothing to resume; "
                           f"drop --resume to start {'again with --overwrite' if holds_run else 'a new run'}")
    if holds_run and not resume and not overwrite:
        raise SinklabError(f"{out} already holds a run ({_describe(out)}); pass --resume to continue it, "
                           f"--overwrite to replace it, or choose another train.out")


def _describe(out: Path) -> str:
    for ck in checkpoints(out):
        try:
            meta = json.loads((ck / "sinklab.json").read_text())
            return f"checkpoint at step {meta['step']} of {meta['train']['steps']}"
        except _CORRUPT:
            continue
    return "no complete checkpoint"


def clear_run(out: Path) -> None:
    """--overwrite: remove what a previous run wrote, and only that."""
    for name in RUN_OUTPUTS:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def config_differences(meta: dict, model: dict, train: dict) -> list[str]:
    """'section.field is X here but Y in the checkpoint' for every field that must match to resume."""
    diffs = []
    for section, now, then in (("model", model, meta.get("model", {})), ("train", train, meta.get("train", {}))):
        for key, value in now.items():
            if section == "train" and key in RESUME_FREE or key not in then:
                continue
            old = then[key]
            if (list(old) if isinstance(old, (list, tuple)) else old) != (
                    list(value) if isinstance(value, (list, tuple)) else value):
                diffs.append(f"{section}.{key} is {value!r} here but {old!r} in the checkpoint")
    return diffs


@dataclass
class Restored:
    folder: Path
    step: int
    opt_state: dict
    rng: dict
    skipped: list[str]          # "ckpt (step 10): why it did not load", for checkpoints passed over


def restore(out: Path, model: torch.nn.Module, model_cfg: dict, train_cfg: dict, manifest: dict,
            map_location) -> Restored:
    """Load the newest checkpoint that loads whole into `model` (weights) and return its optimizer
    and RNG state. A changed config is one error naming the fields; a corrupt checkpoint is passed
    over for the one before it; none that loads is one error listing why."""
    skipped = []
    for ck in checkpoints(out):
        try:
            meta = json.loads((ck / "sinklab.json").read_text())
            step = int(meta["step"])
        except _CORRUPT as e:
            skipped.append(f"{ck.name}: sinklab.json does not parse ({type(e).__name__})")
            continue
        diffs = config_differences(meta, model_cfg, train_cfg)
        if diffs:
            raise SinklabError(f"cannot resume {out} from step {step}: " + "; ".join(diffs[:4])
                               + ". Resume with the checkpoint's values, or train into another train.out")
        why = _load_into(ck, model, map_location)
        if isinstance(why, str):
            skipped.append(f"{ck.name} (step {step}): {why}")
            continue
        _check_same_data(meta, manifest, out)
        return Restored(ck, step, why["opt"], why["rng"], skipped)
    raise SinklabError(f"cannot resume {out}: no checkpoint loads whole (" + "; ".join(skipped) + ")")


def _load_into(ck: Path, model: torch.nn.Module, map_location) -> dict | str:
    """{'opt': ..., 'rng': ...} after loading the weights, or why the checkpoint does not load."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    try:
        load_model(model, str(ck / "model.safetensors"), strict=True)
    except (SafetensorError, *_CORRUPT) as e:
        return f"model.safetensors does not load ({_first_line(e)})"
    states = {}
    for key, name, where in (("opt", "optimizer.pt", map_location), ("rng", "rng.pt", "cpu")):
        try:
            states[key] = torch.load(ck / name, weights_only=True, map_location=where)
        except _CORRUPT as e:
            return f"{name} does not load ({_first_line(e)})"
    return states


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    if not text or isinstance(e, pickle.UnpicklingError):  # torch's unpickling text is a long how-to
        return type(e).__name__
    return f"{type(e).__name__}: {text[0][:80]}"


def _check_same_data(meta: dict, manifest: dict, out: Path) -> None:
    then = meta.get("data_manifest") or {}
    for key in ("tokens", "vocab_size", "sha256"):
        if key in then and then[key] != manifest.get(key):
            raise SinklabError(f"cannot resume {out}: train.data differs from the checkpoint's data "
                               f"({key} {manifest.get(key)!r} here, {then[key]!r} then)")


def trim_metrics(path: Path, step: int) -> int:
    """Keep the logged rows up to `step` (the checkpoint a run resumes from), so every step is
    logged once; returns how many rows were dropped. Written whole, then renamed."""
    if not path.exists():
        return 0
    rows, cut = read_metrics(path)
    keep = [r for r in rows if r["step"] <= step]
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
    tmp.replace(path)
    return len(rows) - len(keep) + cut

