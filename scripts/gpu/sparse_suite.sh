#!/usr/bin/env bash
# Machine kind: nvidia-h200-x4. Reproduces EXPERIMENTS.md §5, "Sparse attention at quick-60m" (the table of twelve
# patterns and docs/sparse_quick60m.png): the sparse suite's runs through `sinklab sweep`, 1,000 steps each, one per
# GPU at a time; MoBA + sigmoid, when listed, trains at micro-batch 8 on GPU 3 and the rest share GPUs 0-2. The dense
# row is the suite's shared baseline, trained by scripts/gpu/suites_quick60m.sh. Two runs a GPU fit in 10 minutes:
#   OUT=dir bash scripts/gpu/sparse_suite.sh                                         # local, MoBA, NSA variants
#   ONLY=sparse_strided,moba_sink_token,dsa,moba_sigmoid OUT=dir bash scripts/gpu/sparse_suite.sh   # the rest
# Recorded rows: experiments/results/sweeps/quick-60m/{sparse_*,moba*,nsa*,dsa}-*/metrics.jsonl.
# The runs' metrics come back in $OUT/sweeps.tgz (unpack into runs/ to rebuild the scorecard, EXPERIMENTS.md §5).
BUDGET=570; source "$(dirname "$0")/lib.sh"; need_gpus 4
prepare_py8k
ONLY=${ONLY:-sparse_local,sparse_local_global,moba,moba_forced_first,moba_gated,nsa,nsa_forced_first}
SET="train.steps=1000 train.measure_every=200 train.eval_every=200 train.ckpt_every=200"
SWEEP="python3 -m sinklab.cli sweep sparse --preset quick-60m --data $DATA --out runs/sweeps"
MAIN=$(tr , '\n' <<< "$ONLY" | grep -vx moba_sigmoid | paste -sd, -)
if [ "$MAIN" != "$ONLY" ]; then
  CUDA_VISIBLE_DEVICES=3 timeout $(( $(left) - 20 )) $SWEEP --only moba_sigmoid --set $SET train.micro_batch=8 \
    > "$OUT/logs/sweep_moba_sigmoid.log" 2>&1 &
fi
GPUS=0,1,2; [ "$MAIN" = "$ONLY" ] && GPUS=0,1,2,3
[ -z "$MAIN" ] || CUDA_VISIBLE_DEVICES=$GPUS timeout $(( $(left) - 20 )) $SWEEP --only "$MAIN" --set $SET > "$OUT/logs/sweep.log" 2>&1
wait
tar czf "$OUT/sweeps.tgz" runs/sweeps/quick-60m/*/metrics.jsonl runs/sweeps/quick-60m/*/ckpt/sinklab.json 2>/dev/null
tail -qn 3 "$OUT"/logs/sweep*.log
