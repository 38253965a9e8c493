#!/usr/bin/env bash
# Machine kind: nvidia-h200-x4 (two runs, each 2-GPU DDP), or nvidia-h200-x2 for one run. Reproduces EXPERIMENTS.md §1,
# "Sinks emerge during pre-training" (both tables and docs/quick60m_5000.png), the 5,000-step per-head tables of §2, and
# BENCHMARKS.md §4, "The 5,000-step runs": the quick-60m preset's 5,000 steps, softmax (micro-batch 16 per GPU) or
# sigmoid without normalisation (micro-batch 8; seeds 1-3 on a probe of 256 windows), then each final checkpoint's
# per-head table on the probe windows and on held-out document starts (scripts/sink_heads.py).
# Recorded rows: experiments/results/emergence/{softmax_5000,sigmoid_5000_seedS}_{metrics.jsonl,config.json} and
# experiments/results/sigmoid_proxy/*_5000*_heads_*.json.
#   OUT=dir bash scripts/gpu/emergence_quick60m.sh                              # softmax and sigmoid seed 0
#   RUNS="sigmoid:2 sigmoid:3" OUT=dir bash scripts/gpu/emergence_quick60m.sh   # then seeds 2, 3; RUNS=sigmoid:1 on x2
# Each run takes about 7 minutes (sigmoid) or 5 (softmax).
BUDGET=585; source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-"softmax sigmoid:0"}; set -- $RUNS; need_gpus $((2 * $#))
prepare_py8k
COMMON="quick-60m train.data=$DATA train.steps=5000 train.measure_every=250 train.eval_every=500 train.ckpt_every=1000"
g=0
for run in $RUNS; do
  case $run in
    softmax) name=softmax_5000; args="train.micro_batch=16"; n=64 ;;
    sigmoid:0) name=sigmoid_5000_seed0; args="model.score=sigmoid train.micro_batch=8"; n=64 ;;
    sigmoid:*) s=${run#sigmoid:}; name=sigmoid_5000_seed$s; n=256
               args="model.score=sigmoid train.micro_batch=8 train.seed=$s train.measure_n=256" ;;
    *) echo "unknown run $run (softmax, sigmoid:SEED)"; exit 2 ;;
  esac
  (RESERVE=95 train $g,$((g + 1)) $name $COMMON $args; heads $name $g $n) &
  g=$((g + 2))
done
wait
python3 scripts/tables.py emergence_5000 --results "$OUT"
