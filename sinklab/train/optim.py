"""Learning-rate schedule, the optimizer and the peak FLOP/s that MFU is measured against."""
from __future__ import annotations

import math

import torch

from .config import TrainConfig

# Dense bf16 peak per device from NVIDIA's datasheets, the peak MFU is counted against (PaLM, torchtitan).
# More specific names first: the PCIe and NVL H100s have lower peaks than the SXM part.
PEAK_FLOPS = {"H100 PCIe": 756e12, "H100 NVL": 835e12, "H200": 989e12, "H100": 989e12, "A100": 312e12,
              "L4": 121e12, "RTX 4090": 165e12}
# What an 8192^3 bf16 matmul of random data reaches on an H200 (and an H100 SXM): 790 TFLOP/s. `mfu_measured_peak`
# in the training log is against this, labelled, beside MFU.
MEASURED_PEAK_FLOPS = {"H200": 790e12, "H100 PCIe": None, "H100 NVL": None, "H100": 790e12}


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


def peak_flops(device: torch.device, table: dict | None = None) -> float | None:
    """The datasheet's dense bf16 peak of a CUDA device (None off the GPU or for an unknown one);
    `table=MEASURED_PEAK_FLOPS` gives the measured one."""
    if device.type != "cuda":
        return None
    return peak_for_name(torch.cuda.get_device_name(device), PEAK_FLOPS if table is None else table)


def peak_for_name(name: str, table: dict) -> float | None:
    """A pure lookup: the first key of `table` found in the device name."""
    for key, value in table.items():
        if key in name:
            return value
    return None
