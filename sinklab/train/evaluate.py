"""Held-out loss: fixed validation batches, split over the ranks."""
from __future__ import annotations

import torch

from .batches import Batches
from .config import TrainConfig


def eval_slots(n_batches: int, rank: int, world: int) -> list[tuple[int, bool]]:
    """This rank's share of the held-out batches, as (batch index, counted): every rank gets the same
    number of forwards, and past the last batch a rank repeats one that is not counted."""
    slots = [j * world + rank for j in range(-(-n_batches // world))]
    return [(i % n_batches, i < n_batches) for i in slots]


@torch.no_grad()
def evaluate(model, tc: TrainConfig, device, autocast, rank: int = 0, world: int = 1) -> float:
    """Mean loss over `eval_batches` fixed held-out batches, split over the ranks: evaluation
    scales with the GPUs instead of every rank repeating it. Every rank runs the same number of
    forwards (FSDP gathers weights in each); a padding forward past the last batch is not counted."""
    val = Batches(tc.data, "val", tc.seq_len, seed=999)
    was = model.training
    model.eval()
    total = torch.zeros(2, device=device)
    for i, counted in eval_slots(tc.eval_batches, rank, world):
        x = val.get(8, i).to(device)  # batches of 8, so the val loss does not depend on the micro-batch
        with autocast:
            loss = model(x[:, :-1], x[:, 1:]).float()
        if counted:
            total += torch.stack([loss, torch.ones_like(loss)])
    if world > 1:
        torch.distributed.all_reduce(total)
    model.train(was)
    return float(total[0] / total[1])
