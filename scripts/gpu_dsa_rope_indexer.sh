#!/usr/bin/env bash
# DSA with the rotary indexer at quick-60m, 200 steps through FlexAttention
# (GPU0) and through SDPA with the token mask (GPU1); DSA and softmax step times (GPU2).
set -u
source scripts/gpu_env.sh; mkdir -p "$OUT/r"
(CUDA_VISIBLE_DEVICES=2 timeout 215 python3 benchmarks/train_step.py --steps 10 --variants softmax,dsa --out "$OUT/r/variants.jsonl") > "$OUT/r/g2.log" 2>&1 &
prepare_py8k
DSA="quick-60m train.data=/tmp/py8k train.steps=200 train.eval_every=50 train.measure_every=100 train.ckpt_every=100000 model.sparse=dsa model.dsa_tokens=256"
CUDA_VISIBLE_DEVICES=0 timeout 180 python3 -m sinklab.cli train $DSA train.out=runs/dsa_flex > "$OUT/r/dsa_flex.log" 2>&1 &
(CUDA_VISIBLE_DEVICES=1 timeout 180 python3 -c "
import sys
from sinklab.model.attention import Attention
Attention._flex_ok = lambda self, q: False  # diagnostic: DSA through SDPA with its boolean token mask
from sinklab.cli import main
sys.argv = ['sinklab', 'train'] + '$DSA train.out=runs/dsa_sdpa'.split()
main()") > "$OUT/r/dsa_sdpa.log" 2>&1 &
wait
tar czf "$OUT/all.tgz" "$OUT/r" runs/*/metrics.jsonl 2>/dev/null
cat "$OUT/r/variants.jsonl"; tail -qn 1 "$OUT"/r/*.log; for r in dsa_flex dsa_sdpa; do grep -h '"step": 200\|"step": 100\|"step": 50' runs/$r/metrics.jsonl | cut -c1-80; done
rm -rf "$OUT/r"
