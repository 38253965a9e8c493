#!/usr/bin/env bash
# (4x H200): the threshold-free mean alpha_1 at T = 1024, where the threshold Sink
# read ~0 for every pattern: dense, MoBA, NSA and a 256 window, 800 steps each, one per GPU.
set -u
BUDGET=300; source scripts/gpu_env.sh; mkdir -p "$OUT/r"
prepare_py8k > "$OUT/r/prepare.log" 2>&1
RUN="python3 -m sinklab.cli train quick-60m train.data=/tmp/py8k train.steps=800 train.measure_every=200 train.eval_every=200 train.ckpt_every=100000 train.measure_T_long=1024"
i=0
for change in "model.sparse=none" "model.sparse=moba model.sparse_block=128 model.sparse_topk=2" \
              "model.sparse=nsa model.sparse_block=128 model.sparse_topk=2 model.sparse_window=256" "model.window=256"; do
  name=$(echo $change | cut -d' ' -f1 | tr '.=' '__')
  (CUDA_VISIBLE_DEVICES=$i timeout $(( $(left) - 10 )) $RUN $change train.out=runs/long_$name) > "$OUT/r/$name.log" 2>&1 &
  i=$((i + 1))
done
wait
tar czf "$OUT/all.tgz" "$OUT/r" runs/*/metrics.jsonl 2>/dev/null
for f in runs/long_*/metrics.jsonl; do echo $f; grep sink_1_long $f | python3 -c "
import json,sys
for l in sys.stdin:
    r=json.loads(l); print(r['step'], r.get('val_loss'), r.get('sink_1'), r.get('mean_alpha_1'), r.get('sink_1_long'), r.get('mean_alpha_1_long'), r.get('largest_sink_position_long'))"; done
rm -rf "$OUT/r"
