"""`SinkCallback` for transformers' `Trainer`: Sink on a fixed probe every N optimizer steps.

    trainer = Trainer(model=model, args=args, train_dataset=data)
    trainer.add_callback(SinkCallback(probe=ids, every=200, trainer=trainer))

With `trainer` given, the values go through `trainer.log`, so every reporting integration
(TensorBoard, W&B, the console) receives them, as `sink/sink_1`, `sink/mean_alpha_1`, ... Without
it (a callback cannot reach the Trainer otherwise), the step is logged (`control.should_log`) and
the values are added to that step's logs in `on_log`: they reach `state.log_history` and the
callbacks listed after this one, but not the reporting callbacks the Trainer placed before it.
`sinks.jsonl` and `sinks.png` go to `args.output_dir` (or `out`).
"""
from __future__ import annotations

from transformers import TrainerCallback

from ..files import check_output_folder
from .core import SinkTracker, check_every, check_probe, log_values


class SinkCallback(TrainerCallback):
    def __init__(self, probe, every: int, *, trainer=None, out=None, **measure_args):
        self.probe, self.every = check_probe(probe), check_every(every)  # bad input fails here, before training
        self.out = check_output_folder(out, "out") if out is not None else None
        self.trainer, self.measure_args = trainer, measure_args
        self.tracker: SinkTracker | None = None
        self._pending: dict | None = None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        out = self.out if self.out is not None else args.output_dir
        self.tracker = SinkTracker(model, self.probe, self.every, out=out, **self.measure_args)
        self.tracker.resume_at(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every:
            return control
        row = self.tracker.step(state.global_step)
        values = log_values(row) if row is not None and state.is_world_process_zero else None
        if self.trainer is not None:
            if values:
                wanted = control.should_log  # Trainer.log clears it, which would drop the step's own loss row
                self.trainer.log(values)  # rank 0 only: Trainer.log runs no collective
                control.should_log = wanted
        else:
            self._pending = values
            control.should_log = True  # on every rank: the Trainer's logging gathers the loss over ranks
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self._pending and logs is not None:
            logs.update(self._pending)
            if state.log_history:
                state.log_history[-1].update(self._pending)
            self._pending = None
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if self.tracker is not None:
            self.tracker.close()
        return control
