"""GPU check: a resumed run restores the CUDA generator its checkpoint saved.

A tiny model trains on the GPU through `sinklab train` (checkpoint at step 4). The checkpoint is then
resumed in this process after the CUDA generator has moved on, through the trainer's own
`runs.restore` and `checkpoint.resume_state`: the generator's state must equal the saved one, and
the next CUDA draws must equal those drawn from the saved state. Prints one JSON row.

    python benchmarks/gpu_resume_rng.py [--out rows.jsonl]
"""
import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _common import emit  # noqa: E402


def overrides(root: Path, device: str) -> dict:
    return {"train.data": str(root / "shards"), "train.out": str(root / "run"), "train.device": device,
            "train.steps": 4, "train.ckpt_every": 4, "train.seq_len": 32, "train.global_batch": 4, "train.micro_batch": 4}


def train(root: Path, device: str) -> Path:
    from sinklab.data.shards import prepare

    (root / "a.txt").write_text("attention sinks appear in trained language models. " * 300)
    prepare([str(root / "a.txt")], root / "shards", "bytes", progress=False)
    done = subprocess.run([sys.executable, "-m", "sinklab.cli", "train", "tiny",
                           *(f"{k}={v}" for k, v in overrides(root, device).items())], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"sinklab train exited {done.returncode}:\n" + "\n".join(
            (done.stdout + done.stderr).strip().splitlines()[-25:]))
    return root


def resumed_generator(root: Path, device: str) -> dict:
    """`device` cuda checks the CUDA generator; cpu (a dry run of this script) checks torch's own."""
    from sinklab.data.shards import open_split
    from sinklab.model.decoder import SinkLM
    from sinklab.train import checkpoint, runs
    from sinklab.train.config import resolve_configs
    from sinklab.train.optim import make_optimizer

    gen = torch.cuda if device == "cuda" else torch
    run = root / "run"
    saved = torch.load(run / "ckpt" / "rng.pt", weights_only=True)["cuda" if device == "cuda" else "torch"]
    gen.set_rng_state(saved)
    expected = torch.rand(4, device=device)  # what the saved generator draws next
    gen.manual_seed(12345)                    # the generator moves on, as a new process's would
    mc, tc = resolve_configs("tiny", overrides(root, device))
    model = SinkLM(mc).to(device)
    manifest = open_split(str(root / "shards"), "train")[1]
    restored = runs.restore(run, model, mc.to_dict(), dataclasses.asdict(tc), manifest, device)
    step = checkpoint.resume_state(restored, model, make_optimizer(model, tc, fused=False), False, run, 0)
    state_equal = bool(torch.equal(gen.get_rng_state(), saved))
    draws_equal = bool(torch.equal(torch.rand(4, device=device), expected))
    return {"check": f"resume restores the {'CUDA' if device == 'cuda' else 'CPU'} generator", "resumed_step": step,
            "state_equal": state_equal, "next_draws_equal": draws_equal,
            "ok": state_equal and draws_equal and step == 4,
            "gpu": torch.cuda.get_device_name() if device == "cuda" else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="cpu: a dry run of the script")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        try:
            row = resumed_generator(train(Path(d), a.device), a.device)
        except Exception as e:  # the trainer or the restore failed: record why, in the row and on the console
            print(e, file=sys.stderr)
            row = {"check": f"resume restores the {'CUDA' if a.device == 'cuda' else 'CPU'} generator", "ok": False,
                   "error": (str(e).strip().splitlines() or [type(e).__name__])[-1]}
        emit(row, a.out)


if __name__ == "__main__":
    main()
