#!/usr/bin/env bash
# Machine kind: nvidia-h200. Reproduces EXPERIMENTS.md §3, "A faithful small-compute protocol" (the table and
# docs/faithful60m.png): one run per learning rate in LRS, in turn, Sink_1 every 250 steps, val loss every 500.
#   PRESET=quick-60m LRS="8e-4 1.6e-3" STEPS=2000 OUT=dir bash scripts/gpu/faithful60m.sh   # the calibration runs
#   SEED=0 OUT=dir bash scripts/gpu/faithful60m.sh; SEED=1 ...                             # the protocol, 4,800 steps
# (the defaults: PRESET=faithful-60m LRS=8e-4 STEPS=4800 SEED=0; about 8 minutes a protocol run).
# Recorded rows: experiments/results/faithful60m/lr{LR}_{STEPS}_seed{SEED}_{metrics.jsonl,config.json}, manifest.json.
BUDGET=585; source "$(dirname "$0")/lib.sh"; need_gpus 1
LRS=${LRS:-8e-4}; STEPS=${STEPS:-4800}; SEED=${SEED:-0}; PRESET=${PRESET:-faithful-60m}
prepare_py8k
for lr in $LRS; do
  name=lr${lr}_${STEPS}_seed${SEED}
  train 0 "$name" "$PRESET" train.data="$DATA" train.steps="$STEPS" train.measure_every=250 train.eval_every=500 \
    train.ckpt_every=100000 train.seed="$SEED" train.lr="$lr"
done
python3 scripts/tables.py faithful60m --results "$OUT"
