"""Learning-rate schedule, the optimizer and the peak FLOP/s that MFU is measured against."""
from __future__ import annotations

import math

import torch

from .config import TrainConfig

# bf16 dense peak per device, for MFU. H200: measured here (8192^3 bf16 matmul, random data).
PEAK_FLOPS = {"H200": 790e12, "H100": 790e12, "A100": 312e12, "L4": 121e12, "RTX 4090": 165e12}


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


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_FLOPS.items():
        if key in name:
            return value
    return None
