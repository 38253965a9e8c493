#!/usr/bin/env bash
# Machine kind: nvidia-h200. The contested claims at the faithful-60m protocol (EXPERIMENTS.md §3): one of K bias
# (v = 0), KV bias, NoPE or ALiBi, trained as the protocol's seed-0 baseline was (LR 8e-4 constant after warm-up,
# Sink_1 every 250 steps, val loss every 500). A K/KV bias steps at about 129 ms and ALiBi at 118 ms against
# softmax's 83 ms (BENCHMARKS.md §3), so 4,800 steps of them do not fit the GPU machine's 10-minute command: they
# run the steps that fit (default STEPS below). The schedule is constant after warm-up, so such a run is the
# protocol's prefix, compared at its last step with the baseline's row of the same step
# (experiments/results/faithful60m/lr8e-4_4800_seed0_metrics.jsonl, from scripts/gpu/faithful60m.sh).
#   CHANGE=k_bias OUT=dir bash scripts/gpu/faithful60m_contested.sh   (CHANGE: k_bias, kv_bias, pos_nope, pos_alibi)
# Recorded rows: experiments/results/faithful60m/contested_{CHANGE}_{metrics.jsonl,config.json}, and their logs in
# contested_log.txt. k_bias and pos_nope ran alone at the default STEPS; kv_bias and pos_alibi ran as two processes
# on one H200 at once (BUDGET_S=578), stopped by the time limit at steps 2,030 and 1,750, and are read at their last
# probed step: STEPS=2000 and STEPS=1750 rerun those prefixes alone.
BUDGET=585; source "$(dirname "$0")/lib.sh"; need_gpus 1
case ${CHANGE:-} in
  k_bias) SET="model.attn_bias=k"; FIT=3000 ;;
  kv_bias) SET="model.attn_bias=kv"; FIT=3000 ;;
  pos_nope) SET="model.position=nope"; FIT=4800 ;;
  pos_alibi) SET="model.position=alibi"; FIT=3250 ;;
  *) echo "CHANGE must be one of k_bias kv_bias pos_nope pos_alibi (got '${CHANGE:-}')"; exit 2 ;;
esac
prepare_py8k
train 0 "contested_$CHANGE" faithful-60m $SET train.data="$DATA" train.steps="${STEPS:-$FIT}" train.seed=0 \
  train.measure_every=250 train.eval_every=500 train.ckpt_every=100000
