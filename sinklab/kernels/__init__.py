"""Fused GPU kernels shared by the model and the measurement (they import nothing from sinklab)."""
