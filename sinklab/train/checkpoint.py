"""Trainer checkpoints: the model files of `model/checkpoint.py` plus optimizer and RNG state, written
by the same atomic writer, and restored on resume (the CUDA generator included).

Layout of RUN/ckpt: model.safetensors, sinklab.json (step, model and train config), optimizer.pt,
rng.pt, tokenizer.json (the data's, if any) and COMPLETE. The one before is kept as ckpt.prev.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import torch

from ..config import ModelConfig
from ..errors import SinklabError
from ..model.checkpoint import write_atomically, write_model_files
from ..model.decoder import SinkLM
from . import runs
from .config import TrainConfig


def full_states(model: SinkLM, opt, sharded: bool) -> tuple:
    """(weights, optimizer state) whole on this rank. Under FSDP this is a collective: every rank
    must call it, and rank 0 receives the gathered tensors (on the CPU)."""
    if not sharded:
        return model, opt.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

    o = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=o), get_optimizer_state_dict(model, opt, options=o)


def rng_state() -> dict:
    """torch's generators; batches are seeded per step, so only these carry state across steps."""
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state()
    return rng


def restore_rng(rng: dict) -> None:
    """Set the generators `rng_state` saved. A CUDA state is restored wherever a GPU is visible (a
    run saved on a GPU and resumed on the CPU has no CUDA generator to restore)."""
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])


def save_checkpoint(folder: Path, model, opt_state: dict, step: int, tc: TrainConfig, extra: dict,
                    cfg: ModelConfig | None = None) -> None:
    """Atomic: written to ckpt.tmp, then renamed to ckpt, the one before kept as ckpt.prev. A kill
    mid-write leaves the last one whole.
    `model` is the module, or its full state dict (gathered from FSDP shards) with `cfg`."""
    if isinstance(model, dict):  # a whole state dict: save through a CPU model (handles tied weights)
        whole = SinkLM(cfg)
        whole.load_state_dict(model)
        model = whole
    data_tok = Path(tc.data) / "tokenizer.json"

    def fill(tmp: Path) -> None:
        write_model_files(tmp, model, {"step": step, "train": dataclasses.asdict(tc), **extra},
                          data_tok if data_tok.exists() else None)
        torch.save(opt_state, tmp / "optimizer.pt")
        torch.save(rng_state(), tmp / "rng.pt")
        (tmp / "COMPLETE").write_text(str(step))

    shutil.rmtree(folder / "ckpt.old", ignore_errors=True)  # left by an earlier layout
    final = write_atomically(folder / "ckpt", fill, keep_previous="ckpt.prev")
    if tc.keep_every and (step % tc.keep_every == 0 or step == tc.steps):
        keep_model_copy(final, folder / "checkpoints" / f"step{step}")


def keep_model_copy(ckpt: Path, target: Path) -> None:
    """The model of a checkpoint (weights, config, tokenizer), hard-linked where the file system
    allows (no second copy on disk), written whole or not at all."""
    def fill(tmp: Path) -> None:
        for name in ("model.safetensors", "sinklab.json", "tokenizer.json"):
            if (ckpt / name).exists():
                try:
                    os.link(ckpt / name, tmp / name)
                except OSError:
                    shutil.copy2(ckpt / name, tmp / name)

    write_atomically(target, fill)


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint (ckpt, else ckpt.prev, which survives a kill between the renames)."""
    found = runs.checkpoints(Path(folder))
    return found[0] if found else None


def resume_state(restored: runs.Restored, model, opt, sharded: bool, out: Path, rank: int) -> int:
    """Apply a restored checkpoint's optimizer and RNG state; drop logged rows past its step. Returns it."""
    try:
        if sharded:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

            set_optimizer_state_dict(model, opt, restored.opt_state, options=StateDictOptions(full_state_dict=True))
        else:
            opt.load_state_dict(restored.opt_state)
        restore_rng(restored.rng)
    except (ValueError, KeyError, RuntimeError) as e:
        raise SinklabError(f"cannot resume from {restored.folder}: its optimizer state does not fit this model "
                           f"({str(e).splitlines()[0][:100]})") from None
    if rank == 0:
        _report_resume(restored, out)
    return restored.step


def _report_resume(restored: runs.Restored, out: Path) -> None:
    for why in restored.skipped:
        print(f"note: passed over checkpoint {out / why}")
    if restored.skipped:
        print(f"note: resuming from {restored.folder} (step {restored.step}), the newest checkpoint that loads")
    dropped = runs.trim_metrics(out / "metrics.jsonl", restored.step)
    if dropped:
        print(f"note: dropped {dropped} logged row(s) past step {restored.step} from metrics.jsonl")
