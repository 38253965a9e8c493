#!/usr/bin/env bash
# Machine kind: nvidia-h200-x2. Reproduces EXPERIMENTS.md §2, "Apple's bias b = -log T": quick-60m with sigmoid
# attention without normalisation, micro-batch 8, evaluation and the sink measurement every 200 steps; no bias for
# 2,400 steps (GPU 0) and b = -log T (model.sigmoid_bias=auto) for 1,200 (GPU 1).
# Recorded rows: experiments/results/sigmoid_proxy/{sigmoid_2400,sigmoid_bias_logT}_metrics.jsonl.
#   OUT=dir bash scripts/gpu/sigmoid_bias.sh     (about 8 minutes)
BUDGET=570; source "$(dirname "$0")/lib.sh"; need_gpus 2
prepare_py8k
COMMON="quick-60m train.data=$DATA train.measure_every=200 train.eval_every=200 train.ckpt_every=100000
        model.score=sigmoid train.micro_batch=8"
train 0 sigmoid_2400 $COMMON train.steps=2400 &
train 1 sigmoid_bias_logT $COMMON train.steps=1200 model.sigmoid_bias=auto &
wait
python3 scripts/tables.py sigmoid_bias --results "$OUT"
