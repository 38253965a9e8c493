"""The training loop. Every N steps it measures the sink with the same code as `sinklab measure`.

Batches are a pure function of (seed, step, micro-batch, rank), so a resumed run sees exactly the
batches the uninterrupted one would have.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import PRESETS, ModelConfig, check_keys, check_ranges, check_types
from ..data import interventions
from ..data.shards import document_starts, open_split
from ..errors import SinklabError
from ..model.decoder import SinkLM
from . import runs
from .runs import checkpoints, default_run_folder

# bf16 dense peak per device, for MFU. H200: measured here (8192^3 bf16 matmul, random data).
PEAK_FLOPS = {"H200": 790e12, "H100": 790e12, "A100": 312e12, "L4": 121e12, "RTX 4090": 165e12}


# the choice fields of TrainConfig (validated; device is only listed by `sinklab train --fields`)
TRAIN_CHOICES = {"parallel": ("ddp", "fsdp"), "ddp_graph": ("split", "whole"), "schedule": ("constant", "cosine"),
                 "measure_probe": ("windows", "doc_starts"), "dtype": ("bfloat16", "float16", "float32"),
                 "device": ("auto", "cpu", "cuda", "cuda:N")}


@dataclass
class TrainConfig:
    data: str = ""
    out: str = ""                   # "": runs/<preset>-<hash of what shapes the run> (runs.default_run_folder)
    steps: int = 1000
    seq_len: int = 2048
    global_batch: int = 32          # sequences per optimizer step, over all GPUs
    micro_batch: int = 32           # sequences per forward pass per GPU
    lr: float = 4e-4
    min_lr: float | None = None     # cosine floor; None = constant after warm-up (the paper's configs)
    schedule: str = "constant"      # constant | cosine
    warmup: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    clip: float = 1.0
    seed: int = 0
    dtype: str = "bfloat16"         # autocast dtype on GPU; CPU runs in float32
    compile: bool = True
    device: str = "auto"
    parallel: str = "ddp"           # several GPUs: ddp (replicas) or fsdp (parameters, gradients and optimizer state sharded)
    ddp_graph: str = "whole"        # compiled DDP: whole (one graph, all-reduce after it) or split (a graph per bucket, all-reduce overlaps backward)
    log_every: int = 10
    eval_every: int = 250
    eval_batches: int = 8
    measure_every: int = 250
    measure_n: int = 64
    measure_T: int = 64
    # windows: at random offsets of the held-out split; doc_starts: the first measure_T tokens of
    # held-out documents, as the paper's probe (its texts cut from their start)
    measure_probe: str = "windows"
    # also measure at a long T, so the probe spans several blocks or windows of a sparse pattern;
    # None: min(seq_len, 1024) for sparse and windowed models, off otherwise; 0: off
    measure_T_long: int | None = None
    ckpt_every: int = 500
    # also keep the model of every keep_every-th step (a multiple of ckpt_every) in checkpoints/stepN,
    # so `sinklab measure --model RUN` traces Sink across the saved steps; None: keep none
    keep_every: int | None = None
    # data interventions (batch time)
    random_tokens: tuple[int, int] | None = None    # positions [a, b)
    fixed_token: tuple[int, int] | None = None      # (position, token id)
    data_fraction: float | None = None              # keep this share of the corpus, repeated
    prefix_loss: bool = False                       # mask the loss on the prefix (needs model.prefix_len)
    tensorboard: bool = False

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """From a dict as written to config.json or a checkpoint (lists back to tuples); unknown keys are
        one clear error naming the nearest field."""
        check_keys(cls, d, "train")
        return cls(**{k: tuple(v) if k in ("random_tokens", "fixed_token") and isinstance(v, list) else v
                      for k, v in d.items()})  # anything else is left for validate() to name

    def validate(self, world: int = 1) -> "TrainConfig":
        """Types, ranges and choices, each error naming the field; then what depends on several fields."""
        check_types(self, "train")
        check_ranges(self, "train", TRAIN_RANGES)
        for name in ("parallel", "ddp_graph", "measure_probe", "schedule", "dtype"):
            if getattr(self, name) not in TRAIN_CHOICES[name]:
                raise SinklabError(f"train field {name}={getattr(self, name)!r} is not one of: "
                                   f"{', '.join(TRAIN_CHOICES[name])}")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except RuntimeError:
                raise SinklabError(f"train field device={self.device!r} is not one of: auto, cpu, cuda, cuda:N") from None
        if self.global_batch % (self.micro_batch * world):
            raise SinklabError(f"global_batch={self.global_batch} is not divisible by micro_batch={self.micro_batch}"
                               f" x {world} GPU(s)")
        if self.keep_every and self.keep_every % self.ckpt_every:
            raise SinklabError(f"train field keep_every={self.keep_every} is not a multiple of ckpt_every={self.ckpt_every}")
        if self.min_lr is not None and self.min_lr > self.lr:
            raise SinklabError(f"train field min_lr={self.min_lr} is larger than lr={self.lr}")
        if self.random_tokens is not None and not 0 <= self.random_tokens[0] < self.random_tokens[1] <= self.seq_len:
            raise SinklabError(f"train field random_tokens={list(self.random_tokens)} must be [a, b) with "
                               f"0 <= a < b <= seq_len={self.seq_len}")
        if self.fixed_token is not None and not (0 <= self.fixed_token[0] <= self.seq_len and self.fixed_token[1] >= 0):
            raise SinklabError(f"train field fixed_token={list(self.fixed_token)} must be [position, token] with "
                               f"0 <= position <= seq_len={self.seq_len} and token >= 0")
        return self


# (low, high, low_open, high_open) per numeric field, as config.check_ranges reads them
TRAIN_RANGES = {
    "steps": (1, None, False, False), "seq_len": (2, None, False, False), "global_batch": (1, None, False, False),
    "micro_batch": (1, None, False, False), "lr": (0, None, True, False), "min_lr": (0, None, False, False),
    "warmup": (0, None, False, False), "weight_decay": (0, None, False, False), "beta1": (0, 1, False, True),
    "beta2": (0, 1, False, True), "clip": (0, None, False, False), "log_every": (1, None, False, False),
    "eval_every": (1, None, False, False), "eval_batches": (1, None, False, False),
    "measure_every": (1, None, False, False), "measure_n": (1, None, False, False), "measure_T": (2, None, False, False),
    "measure_T_long": (0, None, False, False), "ckpt_every": (1, None, False, False),
    "keep_every": (1, None, False, False),
    "data_fraction": (0, 1, True, False),
}


TRAIN_PRESETS = {
    "tiny": dict(steps=300, seq_len=64, global_batch=16, micro_batch=16, lr=3e-3, warmup=20, eval_every=50,
                 measure_every=50, measure_n=32, measure_T=64, ckpt_every=100, compile=False),
    "paper-60m": dict(steps=20000, seq_len=2048, global_batch=512, micro_batch=16, lr=4e-4, warmup=100,
                      eval_every=1000, measure_every=1000, ckpt_every=1000),
    # the paper's 1B model with the 60M recipe; FSDP when run under torchrun
    "paper-1b": dict(steps=20000, seq_len=2048, global_batch=512, micro_batch=8, lr=4e-4, warmup=100,
                     eval_every=1000, measure_every=1000, ckpt_every=1000, parallel="fsdp"),
    "quick-60m": dict(steps=5000, seq_len=2048, global_batch=32, micro_batch=32, lr=4e-4, warmup=100,
                      eval_every=500, measure_every=500, ckpt_every=1000),
    # quick-60m at the LR that calibrated best on one H200 (8e-4: Sink_1 9.9 % at 2,000 steps against 5.9 % at
    # 4e-4 and 7.1 % at 1.6e-3), with as many steps as fit 10 H200-minutes (EXPERIMENTS.md, faithful-60m)
    "faithful-60m": dict(steps=4800, seq_len=2048, global_batch=32, micro_batch=32, lr=8e-4, warmup=100,
                         eval_every=500, measure_every=250, ckpt_every=1000),
}


def resolve_configs(name_or_file: str, overrides: dict) -> tuple[ModelConfig, TrainConfig]:
    """A preset name or a YAML/JSON file with `model:` and `train:` sections, then `key=value` overrides."""
    from ..config import load_config_file

    if name_or_file in PRESETS:
        model_d, train_d = dict(PRESETS[name_or_file]), dict(TRAIN_PRESETS.get(name_or_file, {}))
    else:
        raw = load_config_file(name_or_file)
        unknown = set(raw) - {"model", "train", "preset"}
        if unknown:
            raise SinklabError(f"unknown top-level config key {sorted(unknown)[0]!r}: use model, train and preset")
        base = raw.get("preset", "paper-60m")
        model_d = {**PRESETS.get(base, {}), **(raw.get("model") or {})}
        train_d = {**TRAIN_PRESETS.get(base, {}), **(raw.get("train") or {})}
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if not name:
            section, name = ("model" if name_in(ModelConfig, key) else "train"), key
        target = model_d if section == "model" else train_d if section == "train" else None
        if target is None:
            raise SinklabError(f"unknown config section {section!r} in {key!r}: use model.X or train.X")
        check_keys(ModelConfig if section == "model" else TrainConfig, {name: value}, section)
        target[name] = value
    check_keys(ModelConfig, model_d, "model")
    mc, tc = ModelConfig(**model_d).validate(), TrainConfig.from_dict(train_d).validate()
    if not tc.out:
        tc.out = default_run_folder(name_or_file, mc.to_dict(), dataclasses.asdict(tc))
    return mc, tc


def name_in(cls, name: str) -> bool:
    return name in {f.name for f in dataclasses.fields(cls)}


def parse_overrides(items: list[str]) -> dict:
    """key=value with YAML-typed values (numbers, booleans, lists, null)."""
    import yaml

    out = {}
    for item in items:
        if "=" not in item:
            raise SinklabError(f"override {item!r} must look like key=value")
        k, v = item.split("=", 1)
        try:
            value = yaml.safe_load(v)
        except yaml.YAMLError:  # not YAML (a lone quote, a NUL): the text itself, which the type check judges
            value = v
        if isinstance(value, str):  # YAML 1.1 reads 1e-2 as a string
            try:
                value = float(value)
            except ValueError:
                pass
        out[k.strip()] = value
    return out


# -- batches --------------------------------------------------------------------------------------

class Batches:
    """Random windows of T+1 tokens, a pure function of (seed, step) and the slot (micro, rank).

    A step draws its whole global batch and each (micro-batch, rank) takes its slice, so a step
    trains on the same sequences whatever the GPU count and micro-batch size: DDP on 2 GPUs follows
    the one-GPU loss curve, not a different sample of it."""

    def __init__(self, data: str, split: str, T: int, seed: int, fraction: float | None = None):
        self.arr, self.manifest = open_split(data, split)
        self.T, self.seed = T, seed
        n = len(self.arr)
        if fraction is not None:
            n = max(T + 2, int(n * fraction))
        self.n = n
        self.align = int(self.manifest.get("seq_len") or 0)
        if n < T + 2:
            raise SinklabError(f"{data}/{split} has {n} tokens, fewer than seq_len+1={T + 1}")

    def get(self, B: int, step: int, micro: int = 0, rank: int = 0, world: int = 1, accum: int = 1) -> torch.Tensor:
        g = np.random.default_rng([self.seed, step, 0, 0])
        n = B * world * accum  # the step's global batch
        if self.align:
            starts = g.integers(0, (self.n - self.T - 1) // self.align + 1, size=n) * self.align
        else:
            starts = g.integers(0, self.n - self.T - 1, size=n)
        slot = micro * world + rank
        starts = starts[slot * B:(slot + 1) * B]
        return torch.from_numpy(np.stack([self.arr[s:s + self.T + 1].astype(np.int64) for s in starts]))


def apply_interventions(x: torch.Tensor, tc: TrainConfig, vocab: int, step: int, slot: int = 0):
    """The batch-time interventions on one slot's rows of a step's global batch (slot = micro * world
    + rank, as in `Batches.get`). Random tokens are seeded per sequence of the global batch, from
    (seed, step, row): the same whatever the GPU count, micro-batch or process (step -1: the probe)."""
    if tc.random_tokens:
        a, b = tc.random_tokens
        first = slot * x.shape[0]
        x = torch.cat([interventions.random_tokens(x[i:i + 1], a, b, vocab, _row_generator(tc.seed, step, first + i))
                       for i in range(x.shape[0])])
    if tc.fixed_token:
        x = interventions.fixed_token(x, *tc.fixed_token)
    return x


def _row_generator(seed: int, step: int, row: int) -> torch.Generator:
    # not Python's hash(): it is salted per process, so a resumed run or another rank would draw other tokens
    state = np.random.SeedSequence([seed, step + 1, row, 0x52414E44]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


# -- schedule, optimizer ------------------------------------------------------------------------------

def lr_at(step: int, tc: TrainConfig) -> float:
    if step < tc.warmup:
        return tc.lr * (step + 1) / tc.warmup
    if tc.schedule == "constant" or tc.min_lr is None:
        return tc.lr
    progress = (step - tc.warmup) / max(1, tc.steps - tc.warmup)
    return tc.min_lr + 0.5 * (tc.lr - tc.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: torch.nn.Module, tc: TrainConfig, fused: bool) -> torch.optim.AdamW:
    """Decay matrices only; norms, biases, embeddings' ... as in the paper (LLaMA) recipe: decay >= 2-D."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": tc.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=tc.lr, betas=(tc.beta1, tc.beta2), fused=fused)


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_FLOPS.items():
        if key in name:
            return value
    return None


# -- checkpoints ------------------------------------------------------------------------------------

def full_states(model: SinkLM, opt, sharded: bool) -> tuple:
    """(weights, optimizer state) whole on this rank. Under FSDP this is a collective: every rank
    must call it, and rank 0 receives the gathered tensors (on the CPU)."""
    if not sharded:
        return model, opt.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

    o = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=o), get_optimizer_state_dict(model, opt, options=o)


def save_checkpoint(folder: Path, model, opt_state: dict, step: int, tc: TrainConfig, extra: dict,
                    cfg: ModelConfig | None = None) -> None:
    """Atomic: written to ckpt.tmp, then renamed to ckpt, the one before kept as ckpt.prev. A kill
    mid-write leaves the last one whole.
    `model` is the module, or its full state dict (gathered from FSDP shards) with `cfg`."""
    from safetensors.torch import save_model

    if isinstance(model, dict):  # a whole state dict: save through a CPU model (handles tied weights)
        whole = SinkLM(cfg)
        whole.load_state_dict(model)
        model = whole
    tmp, final = folder / "ckpt.tmp", folder / "ckpt"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))
    torch.save(opt_state, tmp / "optimizer.pt")
    # batches are seeded per step; only torch's generator carries state across steps
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state()
    torch.save(rng, tmp / "rng.pt")
    meta = {"format": 1, "step": step, "model": model.cfg.to_dict(), "train": dataclasses.asdict(tc), **extra}
    (tmp / "sinklab.json").write_text(json.dumps(meta, indent=1))
    data_tok = Path(tc.data) / "tokenizer.json"
    if data_tok.exists():
        shutil.copy(data_tok, tmp / "tokenizer.json")
    (tmp / "COMPLETE").write_text(str(step))
    prev = folder / "ckpt.prev"  # kept: the fallback when ckpt no longer loads
    shutil.rmtree(prev, ignore_errors=True)
    shutil.rmtree(folder / "ckpt.old", ignore_errors=True)
    if final.exists():
        final.rename(prev)
    tmp.rename(final)
    if tc.keep_every and (step % tc.keep_every == 0 or step == tc.steps):
        keep_model_copy(final, folder / "checkpoints" / f"step{step}")


def keep_model_copy(ckpt: Path, target: Path) -> None:
    """The model of a checkpoint (weights, config, tokenizer), hard-linked where the file system
    allows (no second copy on disk), written whole or not at all."""
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("model.safetensors", "sinklab.json", "tokenizer.json"):
        if (ckpt / name).exists():
            try:
                os.link(ckpt / name, tmp / name)
            except OSError:
                shutil.copy2(ckpt / name, tmp / name)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint (ckpt, else ckpt.prev, which survives a kill between the renames)."""
    found = checkpoints(Path(folder))
    return found[0] if found else None


# -- the loop -----------------------------------------------------------------------------------

def _dist():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


def train(mc: ModelConfig, tc: TrainConfig, resume: bool = False, progress: bool = True,
          overwrite: bool = False) -> dict:
    """Train, or with `resume` continue the run in tc.out from its newest checkpoint that loads.
    A folder that holds a run is replaced only with `overwrite`."""
    world, rank, local = _dist()
    tc.validate(world)
    if not tc.data:
        raise SinklabError("train needs data: train.data=FOLDER (from `sinklab data prepare`)")
    if world > 1:
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() and tc.device != "cpu" else "gloo")
    device = _device(tc, local)
    train_data = Batches(tc.data, "train", tc.seq_len, tc.seed, tc.data_fraction)
    vocab = train_data.manifest["vocab_size"]
    T_long = _check_fits(mc, tc, train_data.manifest)
    probe_ids = _probe(tc, train_data.manifest)  # fixed for the whole run; bad probe settings fail here
    probe_long = _probe(tc, train_data.manifest, T_long) if T_long else None
    out = _claim_run_folder(Path(tc.out), resume, overwrite, rank, world)

    torch.manual_seed(tc.seed)
    model = SinkLM(mc).to(device)
    sharded = world > 1 and tc.parallel == "fsdp"
    restored = None
    if resume:  # weights before sharding; the optimizer state once the optimizer exists
        restored = runs.restore(out, model, mc.to_dict(), dataclasses.asdict(tc), train_data.manifest,
                                map_location="cpu" if sharded else device)
    if sharded:
        _shard(model, device)
    opt = make_optimizer(model, tc, fused=device.type == "cuda")
    start = _resume_state(restored, model, opt, sharded, out, rank) if restored else 0
    if rank == 0:
        (out / "config.json").write_text(json.dumps({"model": mc.to_dict(), "train": dataclasses.asdict(tc),
                                                     "world_size": world, "data_manifest": train_data.manifest},
                                                    indent=1))

    step_model = model
    if world > 1 and not sharded:
        from torch.nn.parallel import DistributedDataParallel as DDP

        # DDP first, then compile, so dynamo sees DDP: with ddp_graph=split it cuts the graph at
        # DDP's buckets (see below)
        step_model = DDP(step_model, device_ids=[local] if device.type == "cuda" else None,
                         gradient_as_bucket_view=True)
    if tc.compile and device.type == "cuda":
        # split: dynamo cuts the graph at DDP's buckets so all-reduces overlap the backward, at the
        # price of fusion across the cuts; whole: one graph, one burst of all-reduces after it. At
        # quick-60m on 2 H200s whole measured 1.82x one GPU and split 1.78x (BENCHMARKS.md section 4)
        torch._dynamo.config.optimize_ddp = tc.ddp_graph == "split"
        step_model = torch.compile(step_model)
    autocast = torch.autocast("cuda", dtype=getattr(torch, tc.dtype)) if device.type == "cuda" else contextlib.nullcontext()
    accum = tc.global_batch // (tc.micro_batch * world)
    tokens_per_step = tc.global_batch * tc.seq_len
    flops_per_step = model.flops_per_token(tc.seq_len) * tokens_per_step
    peak = peak_flops(device)
    peak = peak * world if peak else None  # MFU of the whole job: tokens/s counts every GPU
    logger = _Logger(out, tc, rank == 0)
    from tqdm.auto import tqdm

    bar = tqdm(total=tc.steps, initial=start, desc="train", unit="step", dynamic_ncols=True,
               disable=rank != 0 or not progress or os.environ.get("SINKLAB_NO_PROGRESS") == "1")
    t_last, steps_since, last_good = time.perf_counter(), 0, start
    steady_from, t_steady = start + min(10, max(0, tc.steps - start - 1)), None  # skip compile warm-up
    result = {}
    for step in range(start, tc.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, tc)
        total = 0.0
        for micro in range(accum):
            x = train_data.get(tc.micro_batch, step, micro, rank, world, accum)
            x = apply_interventions(x, tc, vocab, step, micro * world + rank).to(device, non_blocking=True)
            mask = None
            if tc.prefix_loss and mc.prefix_len:
                mask = interventions.prefix_loss_mask(x.shape[0], tc.seq_len, mc.prefix_len).to(device)
            sync = world == 1 or micro == accum - 1
            if sharded:  # FSDP: reduce-scatter gradients only on the last micro-batch
                model.set_requires_gradient_sync(sync)
            ctx = step_model.no_sync() if (world > 1 and not sync and not sharded) else contextlib.nullcontext()
            with ctx, autocast:
                loss = step_model(x[:, :-1], x[:, 1:], loss_mask=mask) / accum
            loss.backward()
            total += loss.detach()
        if tc.clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        steps_since += 1
        done = step + 1
        if done == steady_from:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t_steady = time.perf_counter()
        log_now = done % tc.log_every == 0 or done == tc.steps or done == 1
        row = None
        if log_now or done % tc.eval_every == 0 or done % tc.measure_every == 0:
            loss_v = (total.item() if torch.is_tensor(total) else total)
            if world > 1:
                t = torch.tensor([loss_v], device=device)
                torch.distributed.all_reduce(t)
                loss_v = t.item() / world
            if not math.isfinite(loss_v):
                logger.close()
                raise SinklabError(f"loss is {loss_v} at step {done}; stopped. The last good checkpoint "
                                   f"(step {last_good}) is in {out}/ckpt")
            now = time.perf_counter()
            if device.type == "cuda":
                torch.cuda.synchronize()
            tps = steps_since * tokens_per_step / (now - t_last)
            row = {"step": done, "loss": round(loss_v, 5), "lr": lr_at(step, tc), "tokens_per_s": round(tps),
                   "mfu": round(tps / tokens_per_step * flops_per_step / peak, 4) if peak else None}
            bar.set_postfix(loss=f"{loss_v:.3f}", tok_s=f"{tps / 1e3:.0f}k",
                            **({"mfu": f"{row['mfu']:.0%}"} if peak else {}))
        if done % tc.eval_every == 0 or done == tc.steps:
            row["val_loss"] = round(evaluate(model, tc, device, autocast, rank, world), 5)
        if (rank == 0 or sharded) and (done % tc.measure_every == 0 or done == tc.steps):
            # under FSDP every rank runs it (the shards gather); the last one is also the run's final report
            final = out / "final_measure" if done == tc.steps and rank == 0 else None
            sink = measure_sink(model, probe_ids, mc, save_as_final=final, step=done)
            if probe_long is not None:
                long = measure_sink(model, probe_long, mc)
                sink.update({f"{k}_long": long[k] for k in LONG_KEYS if k in long}, measure_T_long=T_long)
            if rank == 0:
                row.update(sink)
        if row is not None and t_steady is not None and done > steady_from:
            # everything since warm-up, evaluation and sink measurement included
            overall = (done - steady_from) * tokens_per_step / (time.perf_counter() - t_steady)
            row["tokens_per_s_overall"] = round(overall)
            if peak:
                row["mfu_overall"] = round(overall / tokens_per_step * flops_per_step / peak, 4)
        if row is not None:
            logger.log(row)
            result = row
            t_last, steps_since = time.perf_counter(), 0
        if (rank == 0 or sharded) and (done % tc.ckpt_every == 0 or done == tc.steps):
            weights, opt_state = full_states(model, opt, sharded)
            if rank == 0:
                save_checkpoint(out, weights, opt_state, done, tc, {"data_manifest": train_data.manifest}, mc)
            last_good = done
        bar.update(1)
    bar.close()
    logger.close()
    if world > 1:
        torch.distributed.destroy_process_group()
    return result


def _device(tc: TrainConfig, local: int) -> torch.device:
    if tc.device == "auto":
        device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(tc.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SinklabError(f"train field device={tc.device!r}: no CUDA GPU is visible to PyTorch")
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
    return device


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


def _resume_state(restored: "runs.Restored", model, opt, sharded: bool, out: Path, rank: int) -> int:
    """Apply a restored checkpoint's optimizer and RNG state; drop logged rows past its step. Returns it."""
    try:
        if sharded:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

            set_optimizer_state_dict(model, opt, restored.opt_state, options=StateDictOptions(full_state_dict=True))
        else:
            opt.load_state_dict(restored.opt_state)
        torch.set_rng_state(restored.rng["torch"])
    except (ValueError, KeyError, RuntimeError) as e:
        raise SinklabError(f"cannot resume from {restored.folder}: its optimizer state does not fit this model "
                           f"({str(e).splitlines()[0][:100]})") from None
    if rank == 0:
        for why in restored.skipped:
            print(f"note: passed over checkpoint {out / why}")
        if restored.skipped:
            print(f"note: resuming from {restored.folder} (step {restored.step}), the newest checkpoint that loads")
        dropped = runs.trim_metrics(out / "metrics.jsonl", restored.step)
        if dropped:
            print(f"note: dropped {dropped} logged row(s) past step {restored.step} from metrics.jsonl")
    return restored.step


def _shard(model: SinkLM, device) -> None:
    """FSDP2: each block is one unit of all-gather / reduce-scatter, the root holds the rest. On a
    GPU, weights are gathered and used in bf16 and gradients reduced in float32."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if device.type == "cuda" \
        else MixedPrecisionPolicy()
    # blocks get bf16 activations from the root; casting their other arguments would turn the shared
    # RoPE tables and position biases to bf16, which the unsharded model keeps in float32
    block_mp = dataclasses.replace(mp, cast_forward_inputs=False)
    for block in model.layers:
        fully_shard(block, mp_policy=block_mp)
    fully_shard(model, mp_policy=mp)
    register_fsdp_forward_method(model, "hidden_states")  # the measurement calls it directly


def _probe(tc: TrainConfig, manifest: dict, T: int | None = None) -> torch.Tensor:
    """Fixed held-out windows for the sink measurement (interventions applied as in training). The
    long probe (T given) always takes windows: few documents are that long."""
    if T is None and tc.measure_probe == "doc_starts":
        val, _ = open_split(tc.data, "val")
        try:
            x = torch.from_numpy(document_starts(val, manifest["eot_id"], tc.measure_n, tc.measure_T))
        except SinklabError as e:
            raise SinklabError(f"train field measure_probe=doc_starts: {e} in the held-out split; "
                               f"lower train.measure_n or use measure_probe=windows") from None
    else:
        T = T or tc.measure_T
        x = Batches(tc.data, "val", T - 1, seed=12345).get(tc.measure_n, 0)[:, :T]
    return apply_interventions(x, tc, manifest["vocab_size"], -1)


def long_probe_T(tc: TrainConfig, mc: ModelConfig, val_tokens: int) -> int:
    """The long probe's T (0: none). Auto only for sparse or windowed models, where T = 64 sits
    inside one block or window and so measures dense attention."""
    if tc.measure_T_long is not None:
        return tc.measure_T_long
    if mc.sparse == "none" and not mc.window:
        return 0
    T = min(tc.seq_len, 1024, val_tokens - 2)
    return T if T > tc.measure_T else 0


LONG_KEYS = ("sink_1", "mean_alpha_1", "largest_sink_position", "largest_sink", "sink_1_mask_aware", "sink_by_branch")


def eval_slots(n_batches: int, rank: int, world: int) -> list[tuple[int, bool]]:
    """This rank's share of the held-out batches, as (batch index, counted): every rank gets the same
    number of forwards, and past the last batch a rank repeats one that is not counted."""
    slots = [j * world + rank for j in range(-(-n_batches // world))]
    return [(i % n_batches, i < n_batches) for i in slots]


@torch.no_grad()
def evaluate(model, tc: TrainConfig, device, autocast, rank: int = 0, world: int = 1) -> float:
    """Mean loss over `eval_batches` fixed held-out batches, split over the ranks: evaluation
    scales with the GPUs instead of every rank repeating it. Every rank runs the same number of
    forwards (FSDP gathers weights in each); a padding forward past the last batch is not counted."""
    val = Batches(tc.data, "val", tc.seq_len, seed=999)
    was = model.training
    model.eval()
    total = torch.zeros(2, device=device)
    for i, counted in eval_slots(tc.eval_batches, rank, world):
        x = val.get(8, i).to(device)  # batches of 8, so the val loss does not depend on the micro-batch
        with autocast:
            loss = model(x[:, :-1], x[:, 1:]).float()
        if counted:
            total += torch.stack([loss, torch.ones_like(loss)])
    if world > 1:
        torch.distributed.all_reduce(total)
    model.train(was)
    return float(total[0] / total[1])


def measure_sink(model: SinkLM, probe_ids: torch.Tensor, mc: ModelConfig, save_as_final: Path | None = None,
                 step: int | None = None) -> dict:
    """The same measurement as `sinklab measure`, on fixed held-out windows. With `save_as_final`, the
    whole result (tables, figures, report.html) is written there as the measurement of step `step`,
    which `sinklab report` links instead of measuring the checkpoint again."""
    from ..measure.run import measure
    from ..model.checkpoint import wrap_sinklab_model

    r = measure(wrap_sinklab_model(model), probe="tokens", input_ids=probe_ids, T=probe_ids.shape[1],
                eps=0.3, batch_size=16, K=8, keep_map_upto=probe_ids.shape[1] if save_as_final else 0,
                progress=False)
    if save_as_final is not None:
        r.summary["checkpoint_step"] = step
        r.write(save_as_final)
    s = r.summary
    hr = [v for v in s["diagnostics"]["hidden_ratio"] if v == v]
    out = {"sink_1": s["sink"]["1"], "mean_alpha_1": s["mean_alpha_1"],
           "largest_sink_position": s["largest_sink"]["position"], "largest_sink": s["largest_sink"]["sink_pct"],
           "massive_activation": round(max(hr), 3) if hr else None}
    if s.get("sink_star"):
        out["sink_star"] = s["sink_star"]
    if s.get("sink_star_paper"):
        out["sink_star_paper"] = s["sink_star_paper"]
    if s.get("sink_by_branch"):
        out["sink_by_branch"] = s["sink_by_branch"]
    if s.get("unnormalised"):  # proxy-score models: Sink_1 of heads that also weigh token 1 > eps; the largest weight
        out["sink_1_share_and_weight"] = s["unnormalised"]["sink_1_share_and_weight"]
        out["max_head_weight_1"] = s["unnormalised"]["max_head_weight_1"]["weight"]
    if s.get("sink_mask_aware"):  # sparse patterns: alpha over the queries that can see position 1
        out["sink_1_mask_aware"] = s["sink_mask_aware"]["1"]
    return out


class _Logger:
    def __init__(self, out: Path, tc: TrainConfig, active: bool):
        self.active = active
        self.f = open(out / "metrics.jsonl", "a") if active else None
        self.tb = None
        if active and tc.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tb"))
            except ImportError:
                print("note: tensorboard is not installed; logging to metrics.jsonl only")

    def log(self, row: dict) -> None:
        if not self.active:
            return
        self.f.write(json.dumps(row) + "\n")
        self.f.flush()
        if self.tb:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "step":
                    self.tb.add_scalar(k, v, row["step"])

    def close(self) -> None:
        if self.f:
            self.f.close()
        if self.tb:
            self.tb.close()




__all__ = ["TrainConfig", "TRAIN_PRESETS", "train", "resolve_configs", "parse_overrides"]
