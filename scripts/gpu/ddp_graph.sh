#!/usr/bin/env bash
# Machine kind: nvidia-h200-x4. Reproduces BENCHMARKS.md §4, "Why DDP compiles one graph": quick-60m, 400 steps,
# evaluation and the sink measurement every 200. First DDP with dynamo's per-bucket graphs (train.ddp_graph=split,
# GPUs 0-1) beside one GPU at micro-batch 32 (GPU 2) and at 16 x 2 (GPU 3); then DDP with one graph
# (train.ddp_graph=whole, the default) beside one GPU at micro-batch 32.
# Recorded rows: experiments/results/ddp/{micro16_ddp,micro32_single,micro16x2_single,whole_graph_ddp,
# whole_graph_single}_metrics.jsonl (the two groups on two hosts of this kind).
#   OUT=dir bash scripts/gpu/ddp_graph.sh     (about 8 minutes)
BUDGET=570; source "$(dirname "$0")/lib.sh"; need_gpus 4
prepare_py8k
COMMON="quick-60m train.data=$DATA train.steps=400 train.measure_every=200 train.eval_every=200 train.ckpt_every=100000"
train 0,1 micro16_ddp $COMMON train.micro_batch=16 train.ddp_graph=split &
train 2 micro32_single $COMMON &
train 3 micro16x2_single $COMMON train.micro_batch=16 &
wait
train 0,1 whole_graph_ddp $COMMON train.micro_batch=16 train.ddp_graph=whole &
train 2 whole_graph_single $COMMON &
wait
python3 scripts/tables.py ddp_graph --results "$OUT"
