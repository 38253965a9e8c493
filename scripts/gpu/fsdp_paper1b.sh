#!/usr/bin/env bash
# Machine kind: nvidia-h200-x2. Reproduces BENCHMARKS.md §4, "FSDP on two GPUs, paper-1b": the 1.1B-parameter
# preset under FSDP at global batch 32 (micro-batch 8 per GPU, 2 micro-batches a step), 30 steps, with evaluation,
# the sink measurement and a whole checkpoint gathered from the shards.
# Recorded rows: experiments/results/fsdp/paper1b_{metrics.jsonl,config.json}.
#   OUT=dir bash scripts/gpu/fsdp_paper1b.sh     (about 4 minutes; writes $OUT/paper1b_{metrics.jsonl,config.json})
BUDGET=400; source "$(dirname "$0")/lib.sh"; need_gpus 2
prepare_py8k
train 0,1 paper1b paper-1b train.data="$DATA" model.vocab_size=8192 train.global_batch=32 train.steps=30 \
  train.log_every=5 train.eval_every=15 train.measure_every=15
ls -la runs/paper1b/ckpt 2>/dev/null
python3 scripts/tables.py fsdp_paper1b --results "$OUT"
