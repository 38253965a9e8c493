#!/usr/bin/env bash
# Machine kind: nvidia-h200-x4. Reproduces EXPERIMENTS.md §5, "The sink under the pattern, at T = 1024": quick-60m,
# 1,000 steps, the sink measured every 200 steps on the usual T = 64 probe and on one of T = 1024
# (train.measure_T_long), dense (GPU 0), MoBA (GPU 1), NSA (GPU 2) and strided (GPU 3), as the sparse suite defines them.
# Recorded rows: experiments/results/long_probe/{dense,moba,nsa}_metrics.jsonl; the strided row is the sparse suite's
# run (experiments/results/sweeps/quick-60m/sparse_strided-*/metrics.jsonl), which measured at T = 1024 too.
#   OUT=dir bash scripts/gpu/long_probe_T1024.sh     (about 8 minutes)
BUDGET=570; source "$(dirname "$0")/lib.sh"; need_gpus 4
prepare_py8k
RUN="quick-60m train.data=$DATA train.steps=1000 train.measure_every=200 train.eval_every=200 train.ckpt_every=100000
     train.measure_T_long=1024"
train 0 dense $RUN &
train 1 moba $RUN model.sparse=moba model.sparse_block=128 model.sparse_topk=2 &
train 2 nsa $RUN model.sparse=nsa model.sparse_block=128 model.sparse_topk=2 model.sparse_window=256 &
train 3 strided $RUN model.sparse=strided model.sparse_stride=128 &
wait
python3 scripts/tables.py long_probe_T1024 --results "$OUT"
