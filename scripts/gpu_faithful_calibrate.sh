#!/usr/bin/env bash
# Calibration for the faithful-60m protocol (EXPERIMENTS.md, "A faithful small-compute protocol"), one H200:
# the quick-60m softmax baseline (LR 4e-4, batch 32 x 2048, 2,000 steps: Sink_1 5.88 %) rerun with one lever moved.
#   PRESET=quick-60m LRS="8e-4 1.6e-3" STEPS=2000 SEED=0 OUT=results bash scripts/gpu_faithful_calibrate.sh
# Writes <name>_metrics.jsonl and <name>_config.json per run, the data manifest and the logs' tails under $OUT.
set -u
BUDGET=585; source scripts/gpu_env.sh; mkdir -p "$OUT"
LRS=${LRS:-"8e-4 1.6e-3"}; STEPS=${STEPS:-2000}; SEED=${SEED:-0}; PRESET=${PRESET:-quick-60m}; EXTRA=${EXTRA:-}
prepare_py8k > "$OUT/prepare.log" 2>&1; cp /tmp/py8k/manifest.json "$OUT/manifest.json"
COMMON="train.data=/tmp/py8k train.steps=$STEPS train.measure_every=250 train.eval_every=500 train.ckpt_every=100000"
for lr in $LRS; do
  name=lr${lr}_${STEPS}_seed${SEED}
  [ "$(left)" -gt 90 ] || { echo "skipped $name: $(left) s left"; continue; }
  timeout $(( $(left) - 15 )) python3 -m sinklab.cli train $PRESET $COMMON $EXTRA train.seed=$SEED train.lr=$lr train.out=runs/$name > /tmp/$name.log 2>&1
  cp runs/$name/metrics.jsonl "$OUT/${name}_metrics.jsonl"; cp runs/$name/config.json "$OUT/${name}_config.json"
  tail -n 3 /tmp/$name.log | cut -c1-300 >> "$OUT/prepare.log"
  echo "$name:"; grep '"sink_1"' runs/$name/metrics.jsonl | python3 -c "import sys,json; print([(r['step'], r['sink_1'], r.get('val_loss')) for r in map(json.loads, sys.stdin)])"
done
