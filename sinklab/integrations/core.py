"""The framework-free core: measure a fixed probe on the model being trained, every N steps.

The measurement is `sinklab.measure(loaded, input_ids=probe, ...)`, the path `sinklab measure` takes
on a saved checkpoint, so a tracked Sink_1 equals the checkpoint's. Around it the model's train/eval
mode (per module), the CPU and CUDA RNG states and its attention implementation are restored, with
autocast off (the measurement runs in the weights' own dtype) and no gradient.

Distributed runs: under DDP only rank 0 measures, on the inner module (no collective runs in it).
Under FSDP2 (`fully_shard`) the weights are sharded, so every rank runs the measurement forward
(each unit gathers its shard, as in training) and rank 0 writes; every rank must therefore call
`step` at the same steps, as it does in a training loop. FSDP1 is refused by name.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch

from ..errors import SinklabError
from ..files import output_folder, read_metrics
from ..measure.load import wrap_module
from ..measure.run import DEFAULT_EPS, measure
from ..train.probe import sink_row
from ..train.runs import trim_metrics

LOGGED_KEYS = ("sink_1", "mean_alpha_1", "largest_sink", "largest_sink_position", "massive_activation")
ROWS_FILE = "sinks.jsonl"
FIGURE_FILE = "sinks.png"


def check_every(every) -> int:
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise SinklabError(f"every must be a whole number of steps >= 1 (got {every!r})")
    return every


def check_probe(probe) -> torch.Tensor:
    """The probe as (n, T) int64 token ids on the host: n >= 1 sequences of T >= 2 tokens."""
    try:
        ids = torch.as_tensor(probe)
    except (TypeError, ValueError, RuntimeError):
        raise SinklabError(f"probe must be token ids of shape (n, T), got {type(probe).__name__}") from None
    if ids.dim() != 2 or ids.shape[0] < 1 or ids.shape[1] < 2:
        raise SinklabError(f"probe must be token ids of shape (n, T) with n >= 1 and T >= 2, got shape "
                           f"{tuple(ids.shape)}")
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise SinklabError(f"probe must hold integer token ids, got dtype {ids.dtype}")
    if int(ids.min()) < 0:
        raise SinklabError(f"probe holds a negative token id ({int(ids.min())})")
    return ids.detach().to("cpu", torch.long)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module that holds the weights: through torch.compile (`_orig_mod`) and DDP / DataParallel
    (`.module`), in any nesting. FSDP1 cannot be measured from one rank or by its inner module."""
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    while True:
        if _is_fsdp1(model):
            raise SinklabError("the model is wrapped in FSDP1 (FullyShardedDataParallel), whose flat shards "
                               "sinklab cannot measure; shard it with FSDP2's fully_shard instead")
        if isinstance(model, torch.nn.Module) and hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, (DistributedDataParallel, DataParallel)):
            model = model.module
        else:
            return model


def _is_fsdp1(model) -> bool:
    if not torch.distributed.is_available():
        return False
    from torch.distributed.fsdp import FullyShardedDataParallel

    return isinstance(model, FullyShardedDataParallel)


def fsdp2_root(model: torch.nn.Module):
    """The model if FSDP2 shards it (fully_shard applied anywhere in it): (sharded, root or None)."""
    if not torch.distributed.is_available():
        return False, None
    from torch.distributed.fsdp import FSDPModule

    sharded = any(isinstance(m, FSDPModule) for m in model.modules())
    return sharded, (model if isinstance(model, FSDPModule) else None)


def process_rank() -> int:
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def check_measurable(model) -> None:
    """Only models sinklab's capture knows: a Hugging Face causal LM or sinklab's own decoder."""
    from transformers import PreTrainedModel

    from ..model.decoder import SinkLM

    if not isinstance(model, (PreTrainedModel, SinkLM)):
        raise SinklabError(f"sinklab tracks Hugging Face causal LMs (PreTrainedModel) and sinklab's SinkLM; "
                           f"got {type(model).__name__}")


@contextlib.contextmanager
def preserved(model: torch.nn.Module):
    """Eval mode, no gradient, autocast off; afterwards every module's mode and the RNG states as before."""
    modes = [(m, m.training) for m in model.modules()]
    cpu_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    device_type = next(model.parameters()).device.type
    try:
        model.eval()
        with torch.no_grad(), torch.autocast(device_type=device_type, enabled=False):
            yield
    finally:
        for m, training in modes:
            m.training = training  # per module: a user may keep parts of the model in eval on purpose
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)


def attention_implementation(model) -> str | None:
    config = getattr(model, "config", None)
    return getattr(config, "_attn_implementation", None)


@contextlib.contextmanager
def attention_set_to(model, name: str | None):
    """HF models: sinklab's capture runs under its registered attention name; training under its own."""
    before = attention_implementation(model)
    if name is not None and before is not None and before != name:
        model.set_attn_implementation(name)
    try:
        yield
    finally:
        if before is not None and attention_implementation(model) != before:
            model.set_attn_implementation(before)


@contextlib.contextmanager
def whole_weights(root):
    """FSDP2: the root unit's own weights gathered (the capture calls the decoder below the root,
    which skips the root's pre-forward hook); the inner units gather themselves."""
    if root is None:
        yield
        return
    root.unshard()
    try:
        yield
    finally:
        root.reshard()


class SinkLog:
    """sinks.jsonl (one row per measured step, appended as measured) and its Sink-against-step figure."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / ROWS_FILE

    def resume_at(self, step: int) -> None:
        """A resumed run keeps the rows up to the step it resumes from, so every step is logged once."""
        trim_metrics(self.path, step)

    def append(self, row: dict) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def rows(self) -> list[dict]:
        return read_metrics(self.path)[0] if self.path.exists() else []

    def figure(self) -> Path | None:
        from ..report.training import sink_against_step_figure

        rows = self.rows()
        return sink_against_step_figure(rows, self.folder / FIGURE_FILE) if rows else None


def log_values(row: dict, prefix: str = "sink/") -> dict:
    """The scalars a trainer's logger takes, named `sink/...`; values a model lacks (None) are left out."""
    return {prefix + k: float(row[k]) for k in LOGGED_KEYS if row.get(k) is not None}


class SinkTracker:
    """Measure a fixed probe every `every` steps of a training loop: `tracker.step(step)` (or
    `tracker(step)`) once per step returns the row when it measured, else None.

    model: a Hugging Face causal LM or a sinklab SinkLM, possibly compiled or wrapped in DDP / FSDP2.
    probe: token ids (n, T). out: a folder for sinks.jsonl and sinks.png (rank 0 writes; None: no files).
    eps, K, batch_size: as `sinklab.measure` (its defaults). The model is checked here, once, by the
    loader's checks: one the capture cannot measure exactly is refused now, not at step `every`.
    """

    def __init__(self, model: torch.nn.Module, probe, every: int, *, out=None, eps: float = DEFAULT_EPS,
                 K: int = 8, batch_size: int = 16, tokenizer=None):
        self.every = check_every(every)
        self.probe = check_probe(probe)
        if not 0.0 < eps < 1.0:
            raise SinklabError(f"eps must lie in (0, 1) (got {eps})")
        self.eps, self.K, self.batch_size = float(eps), int(K), int(batch_size)
        self.rank = process_rank()
        self.log = SinkLog(output_folder(out, "out")) if out is not None and self.rank == 0 else None
        self.module = unwrap(model)
        check_measurable(self.module)
        self.sharded, self.fsdp_root = fsdp2_root(self.module)
        self.measures_here = self.rank == 0 or self.sharded
        self.loaded, self.capture_attention = self._prepare(tokenizer) if self.measures_here else (None, None)
        self.rows: list[dict] = []

    def _prepare(self, tokenizer):
        """Wrap the model as `sinklab.measure` does (with the loader's checks), then hand it back as it was."""
        with preserved(self.module), whole_weights(self.fsdp_root), attention_set_to(self.module, None):
            loaded = wrap_module(self.module, tokenizer)
            name = attention_implementation(self.module)
        vocab = loaded.tokenizer.vocab_size if loaded.tokenizer is not None else None
        if vocab and int(self.probe.max()) >= vocab:
            raise SinklabError(f"probe holds token id {int(self.probe.max())}, beyond the model's vocabulary "
                               f"of {vocab}")
        if loaded.max_context and self.probe.shape[1] > loaded.max_context:
            raise SinklabError(f"probe is {self.probe.shape[1]} tokens long, beyond the model's context of "
                               f"{loaded.max_context}")
        return loaded, name

    def __call__(self, step: int) -> dict | None:
        return self.step(step)

    def step(self, step: int) -> dict | None:
        """Measure if `step` is a multiple of `every` (call it on every rank under FSDP)."""
        return self.measure(step) if step % self.every == 0 else None

    def measure(self, step: int) -> dict | None:
        """Measure now, as step `step`: the row on a rank that measured, else None."""
        if not self.measures_here:
            return None
        with preserved(self.module), whole_weights(self.fsdp_root), \
                attention_set_to(self.module, self.capture_attention):
            result = measure(self.loaded, probe="tokens", input_ids=self.probe, eps=self.eps, K=self.K,
                             batch_size=self.batch_size, keep_map_upto=0, progress=False)
        row = {"step": int(step), **sink_row(result.summary)}
        if self.rank == 0:
            self.rows.append(row)
            if self.log is not None:
                self.log.append(row)
        return row

    def resume_at(self, step: int) -> None:
        """A run resumed at `step`: sinks.jsonl keeps only the rows up to it."""
        if self.log is not None:
            self.log.resume_at(step)

    def close(self) -> Path | None:
        """Draw sinks.png from sinks.jsonl (rank 0, when writing files); returns its path."""
        return self.log.figure() if self.log is not None else None
