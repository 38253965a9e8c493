"""Devices and several GPUs: the rank environment, DDP / FSDP2 wrapping and compilation."""
from __future__ import annotations

import dataclasses
import os

import torch

from ..errors import SinklabError
from ..model.decoder import SinkLM
from .config import TrainConfig


def dist_env() -> tuple[int, int, int]:
    """(world size, rank, local rank) as torchrun sets them; (1, 0, 0) for one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


def resolve_device(name: str, local: int, cuda_available: bool) -> torch.device:
    """The device a process trains on: "auto" is this process's GPU (or the CPU), and a bare "cuda" is
    this process's GPU too (torch.cuda.set_device needs an index)."""
    if name == "auto":
        return torch.device(f"cuda:{local}" if cuda_available else "cpu")
    device = torch.device(name)
    return torch.device("cuda", local) if device.type == "cuda" and device.index is None else device


def pick_device(tc: TrainConfig, local: int) -> torch.device:
    device = resolve_device(tc.device, local, torch.cuda.is_available())
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SinklabError(f"train field device={tc.device!r}: no CUDA GPU is visible to PyTorch")
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
    return device


def shard(model: SinkLM, device) -> None:
    """FSDP2: each block is one unit of all-gather / reduce-scatter, the root holds the rest. On a
    GPU, weights are gathered and used in bf16 and gradients reduced in float32."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if device.type == "cuda" \
        else MixedPrecisionPolicy()
    # blocks get bf16 activations from the root; casting their other arguments would turn the shared
    # RoPE tables and position biases to bf16, which the unsharded model keeps in float32
    block_mp = dataclasses.replace(mp, cast_forward_inputs=False)
    for block in model.layers:
        fully_shard(block, mp_policy=block_mp)
    fully_shard(model, mp_policy=mp)
    register_fsdp_forward_method(model, "hidden_states")  # the measurement calls it directly


def step_module(model: torch.nn.Module, tc: TrainConfig, device, world: int, local: int, sharded: bool):
    """The module the training step calls: DDP-wrapped for replicas, compiled on a GPU."""
    out = model
    if world > 1 and not sharded:
        from torch.nn.parallel import DistributedDataParallel as DDP

        # DDP first, then compile, so dynamo sees DDP: with ddp_graph=split it cuts the graph at
        # DDP's buckets (see below)
        out = DDP(out, device_ids=[local] if device.type == "cuda" else None, gradient_as_bucket_view=True)
    if tc.compile and device.type == "cuda":
        # split: dynamo cuts the graph at DDP's buckets so all-reduces overlap the backward, at the
        # price of fusion across the cuts; whole: one graph, one burst of all-reduces after it. At
        # quick-60m on 2 H200s whole measured 1.82x one GPU and split 1.78x (BENCHMARKS.md section 4)
        torch._dynamo.config.optimize_ddp = tc.ddp_graph == "split"
        out = torch.compile(out)
    return out
