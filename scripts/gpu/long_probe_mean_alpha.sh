#!/usr/bin/env bash
# Machine kind: nvidia-h200-x4. Reproduces EXPERIMENTS.md §5, "The threshold-free mean alpha_1 at T = 1024" (the table
# and docs/long_probe_mean_alpha.png): quick-60m, 800 steps, the sink measured every 200 steps at T = 64 and T = 1024,
# dense, MoBA, NSA and a 256-token window, one per GPU.
# Recorded rows: experiments/results/long_probe/mean_alpha_{dense,moba,nsa,window_256}_metrics.jsonl.
#   OUT=dir bash scripts/gpu/long_probe_mean_alpha.sh     (about 5 minutes)
BUDGET=400; source "$(dirname "$0")/lib.sh"; need_gpus 4
prepare_py8k
RUN="quick-60m train.data=$DATA train.steps=800 train.measure_every=200 train.eval_every=200 train.ckpt_every=100000
     train.measure_T_long=1024"
train 0 mean_alpha_dense $RUN model.sparse=none &
train 1 mean_alpha_moba $RUN model.sparse=moba model.sparse_block=128 model.sparse_topk=2 &
train 2 mean_alpha_nsa $RUN model.sparse=nsa model.sparse_block=128 model.sparse_topk=2 model.sparse_window=256 &
train 3 mean_alpha_window_256 $RUN model.window=256 &
wait
python3 scripts/tables.py long_probe_mean_alpha --results "$OUT"
