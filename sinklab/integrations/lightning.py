"""`SinkCallback` for Lightning: Sink on a fixed probe every N optimizer steps, written to each of
the Trainer's loggers (TensorBoard, W&B, CSV, ...) as `sink/sink_1`, `sink/mean_alpha_1`, ... at
that optimizer step.

Through `logger.log_metrics`, as Lightning's own LearningRateMonitor logs, not `pl_module.log`: a
value `pl_module.log` takes in `on_train_batch_end` is written again at every later logging step
until the next measurement, and one step early (step 9 for optimizer step 10).

    trainer = lightning.Trainer(callbacks=[SinkCallback(probe=ids, every=200)])

The measured model is the one Hugging Face causal LM or sinklab SinkLM inside the LightningModule
(`model=` names the attribute when there are several). `sinks.jsonl` and `sinks.png` go to
`trainer.log_dir` (or `out`).
"""
from __future__ import annotations

import lightning.pytorch as pl

from ..errors import SinklabError
from ..files import check_output_folder
from .core import SinkTracker, check_every, check_probe, log_values, unwrap


def find_model(pl_module, attribute: str | None):
    """The model to measure inside the LightningModule: the named attribute, or the only HF / sinklab model."""
    from transformers import PreTrainedModel

    from ..model.decoder import SinkLM

    if attribute is not None:
        if not hasattr(pl_module, attribute):
            raise SinklabError(f"SinkCallback(model={attribute!r}): {type(pl_module).__name__} has no such attribute")
        return getattr(pl_module, attribute)
    found = [m for m in pl_module.modules() if isinstance(m, (PreTrainedModel, SinkLM))]
    outermost = [m for m in found if not any(m is not o and m in list(o.modules()) for o in found)]
    if len(outermost) != 1:
        raise SinklabError(f"{type(pl_module).__name__} holds {len(outermost)} Hugging Face / sinklab models; "
                           "name the one to measure with SinkCallback(model='attribute')")
    return outermost[0]


class SinkCallback(pl.Callback):
    def __init__(self, probe, every: int, *, model: str | None = None, out=None, **measure_args):
        self.probe, self.every = check_probe(probe), check_every(every)  # bad input fails here, before training
        self.out = check_output_folder(out, "out") if out is not None else None
        self.attribute, self.measure_args = model, measure_args
        self.tracker: SinkTracker | None = None
        self.last_step = -1

    def on_fit_start(self, trainer, pl_module):
        out = self.out if self.out is not None else (trainer.log_dir or trainer.default_root_dir)
        model = unwrap(find_model(pl_module, self.attribute))
        self.tracker = SinkTracker(model, self.probe, self.every, out=out, **self.measure_args)
        self.tracker.resume_at(trainer.global_step)
        self.last_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step  # optimizer steps; with accumulation several batches share one
        if step == self.last_step or step % self.every:
            return
        self.last_step = step
        row = self.tracker.step(step)
        if row is not None and trainer.is_global_zero:  # loggers write on rank 0 only; no collective here
            for logger in trainer.loggers:
                logger.log_metrics(log_values(row), step=step)

    def on_fit_end(self, trainer, pl_module):
        if self.tracker is not None:
            self.tracker.close()
