#!/usr/bin/env bash
# (4x H200):   OUT=results bash scripts/gpu_ddp_whole_graph_dsa_flex.sh
# Phase A: 1 GPU (micro 32) next to DDP on 2 GPUs with one compiled graph (train.ddp_graph=whole);
#   GPU3: DSA at quick-60m through FlexAttention, 300 steps, val loss every 50.
# Phase B: GPU0 DSA through SDPA with the token mask (is the divergence in the flex path?); GPU1 DSA
#   and softmax step times; GPU2 the sparse suite's strided run.
set -u
BUDGET=470; source scripts/gpu_env.sh; mkdir -p "$OUT/r"
prepare_py8k
EVAL="train.data=/tmp/py8k train.measure_every=200 train.eval_every=200 train.ckpt_every=100000"
COMMON="$EVAL train.steps=400"
DSA="quick-60m train.data=/tmp/py8k train.steps=300 train.eval_every=50 train.measure_every=100 train.ckpt_every=100000 model.sparse=dsa model.dsa_tokens=256"
CUDA_VISIBLE_DEVICES=3 timeout 280 python3 -m sinklab.cli train $DSA train.out=runs/dsa_flex > "$OUT/r/dsa_flex.log" 2>&1 &
CUDA_VISIBLE_DEVICES=2 timeout 200 python3 -m sinklab.cli train quick-60m $COMMON train.out=runs/single > "$OUT/r/single.log" 2>&1 &
P1=$!
CUDA_VISIBLE_DEVICES=0,1 timeout 200 python3 -m torch.distributed.run --standalone --nproc_per_node 2 -m sinklab.cli train quick-60m \
  $COMMON train.micro_batch=16 train.ddp_graph=whole train.out=runs/ddp_whole > "$OUT/r/ddp_whole.log" 2>&1
wait $P1
echo "phase A done at $(( $(date +%s) - t0 )) s"
(CUDA_VISIBLE_DEVICES=0 timeout $(($(left) - 10)) python3 -c "
import sys
from sinklab.model.attention import Attention
Attention._flex_ok = lambda self, q: False  # diagnostic: DSA through SDPA with its boolean token mask
from sinklab.cli import main
sys.argv = ['sinklab', 'train'] + '$DSA train.out=runs/dsa_sdpa'.split()
main()") > "$OUT/r/dsa_sdpa.log" 2>&1 &
(CUDA_VISIBLE_DEVICES=1 timeout $(($(left) - 10)) python3 benchmarks/train_step.py --steps 10 --variants softmax,dsa \
  --out "$OUT/r/variants.jsonl") > "$OUT/r/g1.log" 2>&1 &
(CUDA_VISIBLE_DEVICES=2 timeout $(($(left) - 10)) python3 -m sinklab.cli sweep sparse --preset quick-60m --data /tmp/py8k \
  --out runs/sweeps --only sparse_strided --set train.steps=1000 train.measure_every=200 train.eval_every=200 train.ckpt_every=200) > "$OUT/r/g2.log" 2>&1 &
wait
tar czf "$OUT/all.tgz" "$OUT/r" runs/*/metrics.jsonl runs/sweeps/quick-60m/*/metrics.jsonl runs/sweeps/quick-60m/*/ckpt/sinklab.json 2>/dev/null
grep -h '"variant"' "$OUT/r/variants.jsonl"; tail -qn 1 "$OUT"/r/*.log
rm -rf "$OUT/r"
