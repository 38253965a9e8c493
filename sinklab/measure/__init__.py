"""Measurement: metrics (pure functions), capture, probes, the run and multi-model suites.

The package itself is callable, so `sinklab.measure(model, ...)` is `sinklab.measure.run.measure`
on every call, whatever `sinklab.measure.*` module has been imported since.
"""
import sys
import types


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from .run import measure

        return measure(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
