"""Training configuration in one place: `TrainConfig`, its presets, and `key=value` overrides.

`TRAIN_PRESETS` is a plain dict keyed like `sinklab.config.PRESETS` (the model side), so a new
preset is one entry in each.
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import PRESETS, ModelConfig, check_keys, check_ranges, check_types, load_config_file
from ..errors import SinklabError
from .runs import default_run_folder

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
    # several GPUs: ddp (replicas) or fsdp (parameters, gradients and optimizer state sharded)
    parallel: str = "ddp"
    # compiled DDP: whole (one graph, all-reduce after it) or split (a graph per bucket, all-reduce
    # overlaps backward)
    ddp_graph: str = "whole"
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
                raise SinklabError(f"train field device={self.device!r} is not one of: "
                                   "auto, cpu, cuda, cuda:N") from None
        if self.global_batch % (self.micro_batch * world):
            raise SinklabError(f"global_batch={self.global_batch} is not divisible by micro_batch={self.micro_batch}"
                               f" x {world} GPU(s)")
        if self.keep_every and self.keep_every % self.ckpt_every:
            raise SinklabError(f"train field keep_every={self.keep_every} is not a multiple of "
                               f"ckpt_every={self.ckpt_every}")
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
    "measure_every": (1, None, False, False), "measure_n": (1, None, False, False),
    "measure_T": (2, None, False, False),
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
    if name_or_file in PRESETS:
        model_d, train_d = dict(PRESETS[name_or_file]), dict(TRAIN_PRESETS.get(name_or_file, {}))
    else:
        if not Path(name_or_file).exists() and Path(name_or_file).suffix not in (".yaml", ".yml", ".json"):
            close = difflib.get_close_matches(name_or_file, list(PRESETS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SinklabError(f"unknown preset {name_or_file!r}{hint}: use one of {', '.join(PRESETS)}, "
                               "or a YAML/JSON config file")
        raw = load_config_file(name_or_file)
        unknown = set(raw) - {"model", "train", "preset"}
        if unknown:
            raise SinklabError(f"unknown top-level config key {sorted(unknown)[0]!r}: use model, train and preset")
        base = raw.get("preset", "paper-60m")
        if base not in PRESETS:
            raise SinklabError(f"config file {name_or_file}: unknown preset {base!r}: use one of {', '.join(PRESETS)}")
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


__all__ = ["TrainConfig", "TRAIN_PRESETS", "TRAIN_CHOICES", "TRAIN_RANGES", "resolve_configs", "parse_overrides"]
