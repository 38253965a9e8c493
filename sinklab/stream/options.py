"""The streaming options, checked before any model loads: the sizes of a sink cache and the sampling
temperature. Plain arithmetic, shared by the CLI and decode.py, so the sizes are worked out in one place."""
from __future__ import annotations

from ..errors import SinklabError

MIN_TEMPERATURE = 1e-3  # below it, logits / temperature overflow to inf and sampling breaks
ARGUMENT_NAMES = ("cache_size", "n_sink", "window")  # what the errors call the sizes: the arguments,
OPTION_NAMES = ("--cache-size", "--n-sink", "--window")  # or the `sinklab stream` options


def cache_sizes(cache_size: int, n_sink: int, window: int | None = None, keep_slots: int = 0,
                names: tuple[str, str, str] = ARGUMENT_NAMES) -> tuple[int, int]:
    """(window, total) of a sink cache: `n_sink` sinks, `keep_slots` slots for kept tokens and the window,
    `total` tokens in all. The window is what `cache_size` leaves beside the sinks and the slots, unless
    `window` is given: then total = n_sink + keep_slots + window (cache_size must still hold more than
    the sinks and the slots). `names` are what the errors call cache_size, n_sink and window."""
    size_name, sink_name, window_name = names
    for name, value, low in ((sink_name, n_sink, 0), (size_name, cache_size, 1), ("keep_slots", keep_slots, 0)):
        if value < low:
            raise SinklabError(f"{name} must be at least {low} (got {value})")
    if window is not None and window < 1:
        raise SinklabError(f"{window_name} must be at least 1 (got {window})")
    if n_sink + keep_slots >= cache_size:
        kept = f" and {keep_slots} kept slots leave" if keep_slots else " leaves"
        raise SinklabError(f"{sink_name} {n_sink}{kept} no room in {size_name} {cache_size}")
    window = cache_size - n_sink - keep_slots if window is None else window
    return window, n_sink + keep_slots + window


def check_temperature(temperature: float, name: str = "temperature") -> None:
    """0 (greedy), or a finite temperature from MIN_TEMPERATURE up; `name` is what the error calls it."""
    if not (temperature == 0 or MIN_TEMPERATURE <= temperature < float("inf")):
        raise SinklabError(f"{name} must be 0 (greedy) or from {MIN_TEMPERATURE:g} up, finite (got {temperature:g})")
