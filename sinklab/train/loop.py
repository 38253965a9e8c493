"""The training loop: `train()` = `setup()`, then `train_step()` and the periodic jobs (log, eval,
measure, checkpoint) for every step. Every N steps it measures the sink with the same code as
`sinklab measure`.

Batches are a pure function of (seed, step, micro-batch, rank) (see batches.py), so a resumed run
sees exactly the batches the uninterrupted one would have.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..config import ModelConfig
from ..data import interventions
from ..errors import SinklabError
from ..model.decoder import SinkLM
from . import runs
from .batches import Batches, apply_interventions
from .checkpoint import full_states, resume_state, save_checkpoint
from .config import TrainConfig
from .evaluate import evaluate
from .log import Logger
from .optim import MEASURED_PEAK_FLOPS, lr_at, make_optimizer, peak_flops
from .parallel import dist_env, pick_device, shard, step_module
from .probe import LONG_KEYS, long_probe_T, measure_sink, probe_ids

FinalReport = Callable[..., object]  # (result, folder, overwrite=True): writes RUN/final_measure (write_results)


@dataclass
class TrainingRun:
    """Everything `setup()` builds for one training run; the step and the jobs read it."""
    mc: ModelConfig
    tc: TrainConfig
    out: Path
    world: int
    rank: int
    device: torch.device
    data: Batches
    probe: torch.Tensor
    probe_long: torch.Tensor | None
    T_long: int
    model: SinkLM
    step_model: torch.nn.Module     # DDP-wrapped and / or compiled `model`
    opt: torch.optim.Optimizer
    sharded: bool
    start: int
    autocast: object
    logger: Logger
    peak: float | None              # the whole job's datasheet peak FLOP/s (every GPU), None off a known GPU
    measured_peak: float | None = None  # the same from a measured matmul, for the labelled second MFU

    @property
    def accum(self) -> int:
        return self.tc.global_batch // (self.tc.micro_batch * self.world)

    @property
    def tokens_per_step(self) -> int:
        return self.tc.global_batch * self.tc.seq_len


@dataclass
class Clock:
    """Throughput since the last logged row, and since the end of the compile warm-up."""
    t_last: float
    steps_since: int
    steady_from: int
    t_steady: float | None = None
    last_good: int = 0              # the step of the last checkpoint written

    @classmethod
    def start(cls, run: TrainingRun) -> "Clock":
        tc = run.tc
        return cls(time.perf_counter(), 0, run.start + min(10, max(0, tc.steps - run.start - 1)), None, run.start)


def train(mc: ModelConfig, tc: TrainConfig, resume: bool = False, progress: bool = True,
          overwrite: bool = False, final_report: FinalReport | None = None) -> dict:
    """Train, or with `resume` continue the run in tc.out from its newest checkpoint that loads.
    A folder that holds a run is replaced only with `overwrite`. `final_report(result, folder)`
    writes the last step's whole measurement (`sinklab train` passes `report.write_results`).
    Returns the last logged row."""
    run = setup(mc, tc, resume, overwrite)
    from tqdm.auto import tqdm

    bar = tqdm(total=tc.steps, initial=run.start, desc="train", unit="step", dynamic_ncols=True,
               disable=run.rank != 0 or not progress or os.environ.get("SINKLAB_NO_PROGRESS") == "1")
    clock, result = Clock.start(run), {}
    with StopRequest.on_sigterm(run.world == 1) as stop:
        for step in range(run.start, tc.steps):
            loss = train_step(run, step)
            row = periodic_jobs(run, clock, step + 1, loss, final_report)
            if row is not None:
                result = row
                bar.set_postfix(loss=f"{row['loss']:.3f}", tok_s=f"{row['tokens_per_s'] / 1e3:.0f}k",
                                **({"mfu": f"{row['mfu']:.0%}"} if run.peak else {}))
            bar.update(1)
            if stop.requested and step + 1 < tc.steps:
                result = stop_early(run, clock, step + 1)
                break
    bar.close()
    run.logger.close()
    if run.world > 1:
        leave_process_group(run)
    return result


@dataclass
class StopRequest:
    """SIGTERM asks a single-process run to stop after its current step, with a checkpoint to resume
    from (a study runner's deadline). Several ranks would have to agree on the step, so under
    torchrun SIGTERM keeps its default meaning."""
    requested: bool = False

    @classmethod
    @contextlib.contextmanager
    def on_sigterm(cls, enabled: bool):
        stop = cls()
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield stop
            return
        previous = signal.signal(signal.SIGTERM, lambda *_: setattr(stop, "requested", True))
        try:
            yield stop
        finally:
            signal.signal(signal.SIGTERM, previous)


def stop_early(run: TrainingRun, clock: Clock, done: int) -> dict:
    """Checkpoint at step `done` (unless one was just written) and say where the run stopped."""
    if clock.last_good != done:
        checkpoint_job(run, done)
        clock.last_good = done
    return {"step": done, "stopped_at": done}


def leave_process_group(run: TrainingRun) -> None:
    """Every rank leaves together, and the group is torn down while the interpreter is whole.
    DDP and FSDP keep the group alive past destroy_process_group; a rank that exits while rank 0
    still writes its final report then frees gloo's threads at interpreter exit, which aborts the
    process now and then ("terminate called without an active exception", SIGABRT)."""
    torch.distributed.barrier()
    run.step_model = run.model = run.opt = None
    gc.collect()
    torch.distributed.destroy_process_group()


# -- setup ----------------------------------------------------------------------------------------

def setup(mc: ModelConfig, tc: TrainConfig, resume: bool, overwrite: bool) -> TrainingRun:
    """Check everything that can fail before the run folder changes, then build the model, the
    optimizer (restored on resume) and the fixed probes."""
    world, rank, local = dist_env()
    tc.validate(world)
    if not tc.data:
        raise SinklabError("train needs data: train.data=FOLDER (from `sinklab data prepare`)")
    if world > 1:
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() and tc.device != "cpu" else "gloo")
    device = pick_device(tc, local)
    data = Batches(tc.data, "train", tc.seq_len, tc.seed, tc.data_fraction)
    T_long = _check_fits(mc, tc, data.manifest)
    probe = probe_ids(tc, data.manifest)  # fixed for the whole run; bad probe settings fail here
    probe_long = probe_ids(tc, data.manifest, T_long) if T_long else None
    out = _claim_run_folder(Path(tc.out), resume, overwrite, rank, world)
    sharded = world > 1 and tc.parallel == "fsdp"
    model, opt, start = _build(mc, tc, out, device, rank, sharded, data.manifest, resume)
    if rank == 0:
        (out / "config.json").write_text(json.dumps({"model": mc.to_dict(), "train": dataclasses.asdict(tc),
                                                     "world_size": world, "data_manifest": data.manifest},
                                                    indent=1))
    autocast = torch.autocast("cuda", dtype=getattr(torch, tc.dtype)) if device.type == "cuda" \
        else contextlib.nullcontext()
    peak, measured = peak_flops(device), peak_flops(device, MEASURED_PEAK_FLOPS)
    return TrainingRun(mc, tc, out, world, rank, device, data, probe, probe_long, T_long, model,
                       step_module(model, tc, device, world, local, sharded), opt, sharded, start, autocast,
                       Logger(out, tc, rank == 0), peak * world if peak else None,  # MFU of the whole job
                       measured_peak=measured * world if measured else None)


def _build(mc: ModelConfig, tc: TrainConfig, out: Path, device, rank: int, sharded: bool, manifest: dict,
           resume: bool) -> tuple[SinkLM, torch.optim.Optimizer, int]:
    """(model, optimizer, first step): weights restored before sharding, the optimizer state once it exists."""
    torch.manual_seed(tc.seed)
    model = SinkLM(mc).to(device)
    restored = None
    if resume:
        restored = runs.restore(out, model, mc.to_dict(), dataclasses.asdict(tc), manifest,
                                map_location="cpu" if sharded else device)
    if sharded:
        shard(model, device)
    opt = make_optimizer(model, tc, fused=device.type == "cuda")
    start = resume_state(restored, model, opt, sharded, out, rank) if restored else 0
    return model, opt, start


def _check_fits(mc: ModelConfig, tc: TrainConfig, manifest: dict) -> int:
    """What depends on the model and the data together, checked before anything is written; returns
    the long probe's T (0: none)."""
    if manifest["vocab_size"] > mc.vocab_size:
        raise SinklabError(f"data vocabulary {manifest['vocab_size']} is larger than model.vocab_size={mc.vocab_size}")
    if tc.fixed_token is not None and tc.fixed_token[1] >= mc.vocab_size:
        raise SinklabError(f"train field fixed_token={list(tc.fixed_token)}: token {tc.fixed_token[1]} is outside "
                           f"model.vocab_size={mc.vocab_size}")
    mc.check_length(tc.seq_len)
    if tc.measure_T > mc.max_seq_len:
        raise SinklabError(f"train field measure_T={tc.measure_T} is longer than model.max_seq_len={mc.max_seq_len}")
    val_tokens = manifest["tokens"]["val"]
    T_long = long_probe_T(tc, mc, val_tokens)
    if T_long > mc.max_seq_len or T_long + 2 > val_tokens:
        raise SinklabError(f"train field measure_T_long={T_long} is longer than model.max_seq_len={mc.max_seq_len} "
                           f"or the {val_tokens}-token validation split")
    return T_long


def _claim_run_folder(out: Path, resume: bool, overwrite: bool, rank: int, world: int) -> Path:
    """Every rank checks the folder before rank 0 changes it (a barrier between), so all agree."""
    runs.check_run_folder(out, resume, overwrite)
    if rank == 0:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SinklabError(f"cannot create train.out={out}: {e.strerror}") from None
        if overwrite:
            runs.clear_run(out)
    if world > 1:
        torch.distributed.barrier()
    return out


# -- one step -------------------------------------------------------------------------------------

def train_step(run: TrainingRun, step: int) -> torch.Tensor:
    """One optimizer step over the step's global batch (this rank's micro-batches); returns this
    rank's mean loss as a tensor (no host sync)."""
    tc, opt = run.tc, run.opt
    for g in opt.param_groups:
        g["lr"] = lr_at(step, tc)
    total = sum(micro_step(run, step, micro) for micro in range(run.accum))
    if tc.clip:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), tc.clip)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return total


def micro_step(run: TrainingRun, step: int, micro: int) -> torch.Tensor:
    """Forward and backward of one micro-batch; gradients synchronise on the last one only."""
    tc, mc, world = run.tc, run.mc, run.world
    x = run.data.get(tc.micro_batch, step, micro, run.rank, world, run.accum)
    x = apply_interventions(x, tc, run.data.manifest["vocab_size"], step, micro * world + run.rank)
    x = x.to(run.device, non_blocking=True)
    mask = None
    if tc.prefix_loss and mc.prefix_len:
        mask = interventions.prefix_loss_mask(x.shape[0], tc.seq_len, mc.prefix_len).to(run.device)
    sync = world == 1 or micro == run.accum - 1
    if run.sharded:  # FSDP: reduce-scatter gradients only on the last micro-batch
        run.model.set_requires_gradient_sync(sync)
    ctx = run.step_model.no_sync() if (world > 1 and not sync and not run.sharded) else contextlib.nullcontext()
    with ctx, run.autocast:
        loss = run.step_model(x[:, :-1], x[:, 1:], loss_mask=mask) / run.accum
    loss.backward()
    return loss.detach()


# -- periodic jobs --------------------------------------------------------------------------------

def periodic_jobs(run: TrainingRun, clock: Clock, done: int, loss: torch.Tensor,
                  final_report: FinalReport | None = None) -> dict | None:
    """After step `done`: log, evaluate, measure and checkpoint where due. Returns the logged row."""
    tc, last = run.tc, done == run.tc.steps
    clock.steps_since += 1
    if done == clock.steady_from:
        _sync(run.device)
        clock.t_steady = time.perf_counter()
    row = None
    if done % tc.log_every == 0 or last or done == 1 or done % tc.eval_every == 0 or done % tc.measure_every == 0:
        row = log_row(run, clock, done, loss)
    if done % tc.eval_every == 0 or last:
        row["val_loss"] = round(evaluate(run.model, tc, run.device, run.autocast, run.rank, run.world), 5)
    if (run.rank == 0 or run.sharded) and (done % tc.measure_every == 0 or last):
        sink = measure_job(run, done, final_report)
        if run.rank == 0:
            row.update(sink)
    if row is not None:
        _add_overall_rate(run, clock, row, done)
        run.logger.log(row)
        clock.t_last, clock.steps_since = time.perf_counter(), 0
    if (run.rank == 0 or run.sharded) and (done % tc.ckpt_every == 0 or last):
        checkpoint_job(run, done)
        clock.last_good = done
    return row


def log_row(run: TrainingRun, clock: Clock, done: int, loss: torch.Tensor) -> dict:
    """The step's row: the loss over all ranks, the learning rate, tokens/s and MFU since the last row.
    A non-finite loss stops the run, naming the last good checkpoint."""
    loss_v = loss.item() if torch.is_tensor(loss) else float(loss)
    if run.world > 1:
        t = torch.tensor([loss_v], device=run.device)
        torch.distributed.all_reduce(t)
        loss_v = t.item() / run.world
    if not math.isfinite(loss_v):
        run.logger.close()
        raise SinklabError(f"loss is {loss_v} at step {done}; stopped. The last good checkpoint "
                           f"(step {clock.last_good}) is in {run.out}/ckpt")
    now = time.perf_counter()
    _sync(run.device)
    tps = clock.steps_since * run.tokens_per_step / (now - clock.t_last)
    return {"step": done, "loss": round(loss_v, 5), "lr": lr_at(done - 1, run.tc), "tokens_per_s": round(tps),
            **utilisation(tps * _flops_per_token(run), run.peak, run.measured_peak)}


def utilisation(flops_per_s: float, peak: float | None, measured_peak: float | None, suffix: str = "") -> dict:
    """MFU against the datasheet peak, and against the measured matmul peak under its own label."""
    out = {f"mfu{suffix}": round(flops_per_s / peak, 4) if peak else None}
    if measured_peak:
        out[f"mfu{suffix}_measured_peak"] = round(flops_per_s / measured_peak, 4)
    return out


def measure_job(run: TrainingRun, done: int, final_report: FinalReport | None = None) -> dict:
    """Sink on the fixed probe (and the long probe, if any). Under FSDP every rank runs it (the
    shards gather); the last step's is also the run's final report, written by rank 0."""
    final = None
    if final_report is not None and done == run.tc.steps and run.rank == 0:
        def final(result):
            return final_report(result, run.out / "final_measure", overwrite=True)  # the run's own folder
    sink = measure_sink(run.model, run.probe, final_report=final, step=done)
    if run.probe_long is not None:
        long = measure_sink(run.model, run.probe_long)
        sink.update({f"{k}_long": long[k] for k in LONG_KEYS if k in long}, measure_T_long=run.T_long)
    return sink


def checkpoint_job(run: TrainingRun, done: int) -> None:
    """Gather the whole state (a collective under FSDP) and let rank 0 write it."""
    weights, opt_state = full_states(run.model, run.opt, run.sharded)
    if run.rank == 0:
        save_checkpoint(run.out, weights, opt_state, done, run.tc, {"data_manifest": run.data.manifest}, run.mc)


def _add_overall_rate(run: TrainingRun, clock: Clock, row: dict, done: int) -> None:
    """Tokens/s and MFU over everything since warm-up, evaluation and sink measurement included."""
    if clock.t_steady is None or done <= clock.steady_from:
        return
    overall = (done - clock.steady_from) * run.tokens_per_step / (time.perf_counter() - clock.t_steady)
    row["tokens_per_s_overall"] = round(overall)
    if run.peak:
        row.update(utilisation(overall * _flops_per_token(run), run.peak, run.measured_peak, "_overall"))


def _flops_per_token(run: TrainingRun) -> float:
    return run.model.flops_per_token(run.tc.seq_len)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


__all__ = ["train", "setup", "train_step", "periodic_jobs", "TrainingRun"]
