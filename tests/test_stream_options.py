"""sinklab.stream's size arithmetic and temperature check, on hand-made values (no model loads)."""
import math

import pytest

from sinklab.errors import SinklabError
from sinklab.stream import MIN_TEMPERATURE, OPTION_NAMES, cache_sizes, check_temperature


@pytest.mark.parametrize("kwargs,expected", [
    (dict(cache_size=256, n_sink=4), (252, 256)),                 # the window is what the sinks leave
    (dict(cache_size=256, n_sink=4, window=100), (100, 104)),     # a window given: the total follows it
    (dict(cache_size=32, n_sink=0), (32, 32)),                    # no sinks: all window
    (dict(cache_size=16, n_sink=2, keep_slots=3), (11, 16)),      # kept slots come out of the window
    (dict(cache_size=24, n_sink=2, window=5, keep_slots=3), (5, 10)),
    (dict(cache_size=5, n_sink=4), (1, 5)),                       # the smallest window
])
def test_cache_sizes(kwargs, expected):
    assert cache_sizes(**kwargs) == expected


@pytest.mark.parametrize("args,kwargs,message", [
    ((4, 4), {}, "n_sink 4 leaves no room in cache_size 4"),
    ((8, 4), dict(keep_slots=4), "n_sink 4 and 4 kept slots leave no room in cache_size 8"),
    ((0, 0), {}, "cache_size must be at least 1 (got 0)"),
    ((8, -1), {}, "n_sink must be at least 0 (got -1)"),
    ((8, 2), dict(window=0), "window must be at least 1 (got 0)"),
    ((8, 2), dict(keep_slots=-1), "keep_slots must be at least 0 (got -1)"),
    # the CLI's names for the same sizes
    ((256, 300), dict(names=OPTION_NAMES), "--n-sink 300 leaves no room in --cache-size 256"),
    ((256, 4), dict(window=-5, names=OPTION_NAMES), "--window must be at least 1 (got -5)"),
    ((0, 4), dict(names=OPTION_NAMES), "--cache-size must be at least 1 (got 0)"),
])
def test_cache_sizes_errors(args, kwargs, message):
    with pytest.raises(SinklabError) as e:
        cache_sizes(*args, **kwargs)
    assert str(e.value) == message


@pytest.mark.parametrize("value", [0, 0.0, MIN_TEMPERATURE, 0.7, 1.0, 1e6])
def test_temperatures_that_sample(value):
    check_temperature(value)


@pytest.mark.parametrize("value", [-1.0, 1e-4, 1e-163, math.inf, math.nan])
def test_temperatures_refused(value):
    with pytest.raises(SinklabError, match=r"^temperature must be 0 \(greedy\) or from 0.001 up, finite"):
        check_temperature(value)
    with pytest.raises(SinklabError, match=r"^--temperature must be 0 \(greedy\) or from 0.001 up, finite"):
        check_temperature(value, "--temperature")
