#!/usr/bin/env bash
# Machine kind: nvidia-h200-x4. Reproduces EXPERIMENTS.md §1, "Shorter runs of the same recipe" (the table and
# docs/quick60m_emergence.png) and BENCHMARKS.md §4's one-GPU throughput: quick-60m softmax for 2,400 steps (GPU 0),
# sigmoid without normalisation for 1,300 (GPU 1, micro-batch 8) and softmax under 2-GPU DDP for 1,000 (GPUs 2-3),
# evaluation and the sink measurement every 200 steps.
# Recorded rows: experiments/results/emergence/{softmax_2400,sigmoid_1300,softmax_ddp_1000}_metrics.jsonl.
#   OUT=dir bash scripts/gpu/emergence_quick60m_short.sh     (about 9 minutes)
BUDGET=560; source "$(dirname "$0")/lib.sh"; need_gpus 4
prepare_py8k
COMMON="quick-60m train.data=$DATA train.measure_every=200 train.eval_every=200 train.ckpt_every=100000"
train 0 softmax_2400 $COMMON train.steps=2400 &
train 1 sigmoid_1300 $COMMON train.steps=1300 model.score=sigmoid train.micro_batch=8 &
train 2,3 softmax_ddp_1000 $COMMON train.steps=1000 train.micro_batch=16 &
wait
python3 scripts/tables.py emergence_short --results "$OUT"
