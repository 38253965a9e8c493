#!/usr/bin/env bash
# Machine kind: nvidia-h200-x4 (three GPUs used). Reproduces BENCHMARKS.md §4, "Two GPUs (DDP) against one, on the
# same batches": quick-60m, 600 steps, val loss every 100, DDP on GPUs 0-1 (micro-batch 16 each) and one GPU (GPU 2)
# started together.
# Recorded rows: experiments/results/ddp/same_batches_{ddp,single}_metrics.jsonl.
#   OUT=dir bash scripts/gpu/ddp_same_batches.sh     (about 5 minutes; writes $OUT/same_batches_{ddp,single}_metrics.jsonl)
BUDGET=450; source "$(dirname "$0")/lib.sh"; need_gpus 3
prepare_py8k
COMMON="quick-60m train.data=$DATA train.steps=600 train.measure_every=200 train.eval_every=100 train.ckpt_every=100000"
train 0,1 same_batches_ddp $COMMON train.micro_batch=16 &
train 2 same_batches_single $COMMON &
wait
python3 scripts/tables.py ddp_same_batches --results "$OUT"
