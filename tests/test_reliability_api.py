"""The public Python API at user scale: what a user passes gets the right result or one clear error."""
from __future__ import annotations

import pytest

from sinklab.train.loop import utilisation
from sinklab.train.optim import MEASURED_PEAK_FLOPS, PEAK_FLOPS, peak_for_name


@pytest.mark.parametrize("name, datasheet, measured", [
    ("NVIDIA H100 80GB HBM3", 989e12, 790e12),
    ("NVIDIA H200", 989e12, 790e12),
    ("NVIDIA H100 PCIe", 756e12, None),
    ("NVIDIA H100 NVL", 835e12, None),
    ("NVIDIA A100-SXM4-80GB", 312e12, None),
    ("Some Other GPU", None, None),
])
def test_mfu_is_against_the_datasheet_peak(name, datasheet, measured):
    assert peak_for_name(name, PEAK_FLOPS) == datasheet
    assert peak_for_name(name, MEASURED_PEAK_FLOPS) == measured


def test_utilisation_labels_the_measured_peak():
    assert utilisation(494.5e12, 989e12, 790e12) == {"mfu": 0.5, "mfu_measured_peak": 0.6259}
    assert utilisation(494.5e12, 989e12, None, "_overall") == {"mfu_overall": 0.5}
    assert utilisation(1.0, None, None) == {"mfu": None}
