#!/usr/bin/env bash
# Machine kind: nvidia-h200. The contested claims at the faithful-60m protocol (EXPERIMENTS.md §3): one of K bias
# (v = 0), KV bias, NoPE or ALiBi, trained as the protocol's seed-0 baseline was (4,800 steps, Sink_1 every 250,
# val loss every 500), about 8 minutes, so one change a 10-minute call. The baseline it is compared with is
# experiments/results/faithful60m/lr8e-4_4800_seed0_metrics.jsonl (scripts/gpu/faithful60m.sh).
#   CHANGE=k_bias OUT=dir bash scripts/gpu/faithful60m_contested.sh   (CHANGE: k_bias, kv_bias, pos_nope, pos_alibi)
# Recorded rows: experiments/results/faithful60m/contested_{CHANGE}_{metrics.jsonl,config.json}.
BUDGET=585; source "$(dirname "$0")/lib.sh"; need_gpus 1
case ${CHANGE:-} in
  k_bias) SET="model.attn_bias=k" ;;
  kv_bias) SET="model.attn_bias=kv" ;;
  pos_nope) SET="model.position=nope" ;;
  pos_alibi) SET="model.position=alibi" ;;
  *) echo "CHANGE must be one of k_bias kv_bias pos_nope pos_alibi (got '${CHANGE:-}')"; exit 2 ;;
esac
prepare_py8k
train 0 "contested_$CHANGE" faithful-60m $SET train.data="$DATA" train.seed=0 train.measure_every=250 \
  train.eval_every=500 train.ckpt_every=100000
