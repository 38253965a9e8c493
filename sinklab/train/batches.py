"""Batches as a pure function of (seed, step, micro-batch, rank), and the batch-time interventions.

A resumed run sees exactly the batches the uninterrupted one would have.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data import interventions
from ..data.shards import open_split
from ..errors import SinklabError
from .config import TrainConfig


class Batches:
    """Random windows of T+1 tokens, a pure function of (seed, step) and the slot (micro, rank).

    A step draws its whole global batch and each (micro-batch, rank) takes its slice, so a step
    trains on the same sequences whatever the GPU count and micro-batch size: DDP on 2 GPUs follows
    the one-GPU loss curve, not a different sample of it."""

    def __init__(self, data: str, split: str, T: int, seed: int, fraction: float | None = None):
        self.arr, self.manifest = open_split(data, split)
        self.T, self.seed = T, seed
        n = len(self.arr)
        if fraction is not None:
            n = max(T + 2, int(n * fraction))
        self.n = n
        self.align = int(self.manifest.get("seq_len") or 0)
        if n < T + 2:
            raise SinklabError(f"{data}/{split} has {n} tokens, fewer than seq_len+1={T + 1}")

    def get(self, B: int, step: int, micro: int = 0, rank: int = 0, world: int = 1, accum: int = 1) -> torch.Tensor:
        g = np.random.default_rng([self.seed, step, 0, 0])
        n = B * world * accum  # the step's global batch
        if self.align:
            starts = g.integers(0, (self.n - self.T - 1) // self.align + 1, size=n) * self.align
        else:
            starts = g.integers(0, self.n - self.T - 1, size=n)
        slot = micro * world + rank
        starts = starts[slot * B:(slot + 1) * B]
        return torch.from_numpy(np.stack([self.arr[s:s + self.T + 1].astype(np.int64) for s in starts]))


def apply_interventions(x: torch.Tensor, tc: TrainConfig, vocab: int, step: int, slot: int = 0):
    """The batch-time interventions on one slot's rows of a step's global batch (slot = micro * world
    + rank, as in `Batches.get`). Random tokens are seeded per sequence of the global batch, from
    (seed, step, row): the same whatever the GPU count, micro-batch or process (step -1: the probe)."""
    if tc.random_tokens:
        a, b = tc.random_tokens
        first = slot * x.shape[0]
        x = torch.cat([interventions.random_tokens(x[i:i + 1], a, b, vocab, _row_generator(tc.seed, step, first + i))
                       for i in range(x.shape[0])])
    if tc.fixed_token:
        x = interventions.fixed_token(x, *tc.fixed_token)
    return x


def _row_generator(seed: int, step: int, row: int) -> torch.Generator:
    # not Python's hash(): it is salted per process, so a resumed run or another rank would draw other tokens
    state = np.random.SeedSequence([seed, step + 1, row, 0x52414E44]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))
