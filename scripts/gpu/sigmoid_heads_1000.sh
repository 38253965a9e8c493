#!/usr/bin/env bash
# Machine kind: nvidia-h200. Reproduces EXPERIMENTS.md §2, "Where sigmoid's proxy Sink_1 comes from" (the per-head
# table at 1,000 steps and the left panel of docs/sigmoid_heads.png): quick-60m with sigmoid attention without
# normalisation, 1,000 steps at micro-batch 8, then the final checkpoint's per-head table (scripts/sink_heads.py).
# Recorded rows: experiments/results/sigmoid_proxy/sigmoid_1000_{metrics.jsonl,heads.json}.
#   OUT=dir bash scripts/gpu/sigmoid_heads_1000.sh     (about 4 minutes)
BUDGET=500; source "$(dirname "$0")/lib.sh"; need_gpus 1
prepare_py8k
RESERVE=70 train 0 sigmoid_1000 quick-60m train.data="$DATA" train.steps=1000 model.score=sigmoid train.micro_batch=8 \
  train.measure_every=200 train.eval_every=200 train.ckpt_every=100000
CUDA_VISIBLE_DEVICES=0 timeout 60 python3 scripts/sink_heads.py runs/sigmoid_1000/ckpt --data "$DATA" \
  --out "$OUT/sigmoid_1000_heads.json" > "$OUT/logs/sigmoid_1000_heads.log" 2>&1
python3 scripts/tables.py sigmoid_heads_1000 --results "$OUT"
