"""What SinkTracker costs a training loop: the same model trained N steps with and without
`tracker.step(step)` on every step (measuring every `--every`), blocks alternating in one process.

    python benchmarks/tracker_overhead.py                                    # tiny shape, CPU
    python benchmarks/tracker_overhead.py --shape quick-60m --device cuda    # bf16 autocast on the GPU

The probe is the trainer's: 64 sequences of 64 tokens. Each block is 2 x every steps, so it holds
two measurements; the ratio is the tracked blocks' time over the plain blocks' (the target: <= 1.02),
with the median of the per-round ratios beside it and `measure_share`, the measuring calls' own
share of the tracked time, which a busy machine's noise moves least.
Tracker construction (the loader's checks, once per run) is reported beside it, not in the ratio.
"""
import argparse
import time

import torch
from _common import emit

import sinklab
from sinklab.config import preset
from sinklab.model.decoder import SinkLM


MEASURE_S: list[float] = []  # seconds of each measuring call (the GPU queue is synchronised by the measurement)


def train_block(model, opt, steps: int, first: int, batch, device, tracker=None) -> float:
    """Seconds for `steps` optimizer steps (steps numbered from `first`), the tracker called on each."""
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast(
        "cpu", enabled=False)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for step in range(first, first + steps):
        with autocast:
            loss = model(batch[:, :-1], batch[:, 1:])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if tracker is not None and step % tracker.every == 0:
            t1 = time.perf_counter()
            tracker.step(step)
            MEASURE_S.append(time.perf_counter() - t1)
        elif tracker is not None:
            tracker.step(step)
    sync()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="tiny", help="a sinklab model preset (tiny, quick-60m, ...)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--every", type=int, default=200)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--out", default=None, help="append the result row to this .jsonl")
    a = p.parse_args()
    device = torch.device(a.device)
    torch.manual_seed(0)
    model = SinkLM(preset(a.shape)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    vocab = model.cfg.vocab_size
    batch = torch.randint(0, vocab, (a.batch, a.seq + 1), device=device)
    probe = torch.randint(0, vocab, (64, 64), generator=torch.Generator().manual_seed(1))
    t0 = time.perf_counter()
    tracker = sinklab.SinkTracker(model, probe=probe, every=a.every)
    setup_s = time.perf_counter() - t0
    steps = 2 * a.every
    train_block(model, opt, 20, 1, batch, device)  # warm-up: allocator, kernels
    plain, tracked, step = [], [], 1
    for r in range(a.rounds):  # alternate which goes first, so drift over the run falls on both sides
        for with_tracker in ((False, True) if r % 2 == 0 else (True, False)):
            seconds = train_block(model, opt, steps, step, batch, device, tracker if with_tracker else None)
            (tracked if with_tracker else plain).append(seconds)
            step += steps
    emit({"bench": "tracker_overhead", "shape": a.shape, "device": str(device),
          "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None, "every": a.every,
          "steps_per_block": steps, "rounds": a.rounds, "batch": a.batch, "seq": a.seq,
          "plain_s": [round(s, 3) for s in plain], "tracked_s": [round(s, 3) for s in tracked],
          "measurements": len(tracker.rows), "measure_s": [round(s, 3) for s in MEASURE_S], "setup_s": round(setup_s, 3),
          "ratio": round(sum(tracked) / sum(plain), 4),
          "median_round_ratio": round(sorted(t / p for t, p in zip(tracked, plain))[len(plain) // 2], 4),
          "measure_share": round(sum(MEASURE_S) / sum(tracked), 4), "torch": torch.__version__}, a.out)


if __name__ == "__main__":
    main()
