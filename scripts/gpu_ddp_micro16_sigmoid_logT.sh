#!/usr/bin/env bash
# (4x H200):   OUT=results bash scripts/gpu_ddp_micro16_sigmoid_logT.sh
# Phase A (no compiles besides these): quick-60m at global batch 32 on 1 GPU (micro 32), on 1 GPU
#   with micro 16 x 2, and with DDP on 2 GPUs (micro 16 each), side by side (that call's code froze the GC after warm-up; since removed).
# Phase B: GPU0 DSA step profile and times; GPU1 the sparse suite's DSA run; GPU2 the DSA GPU check (since removed),
#   then the dense baseline with the T = 1024 probe; GPU3 sigmoid without normalisation, b = -log T.
set -u
BUDGET=560; source scripts/gpu_env.sh; mkdir -p "$OUT/r"
prepare_py8k
EVAL="train.data=/tmp/py8k train.measure_every=200 train.eval_every=200 train.ckpt_every=100000"
COMMON="$EVAL train.steps=${DDP_STEPS:-400}"
CUDA_VISIBLE_DEVICES=2 timeout 200 python3 -m sinklab.cli train quick-60m $COMMON train.out=runs/single > "$OUT/r/single.log" 2>&1 &
P1=$!
CUDA_VISIBLE_DEVICES=3 timeout 200 python3 -m sinklab.cli train quick-60m $COMMON train.micro_batch=16 train.out=runs/single_m16 > "$OUT/r/single_m16.log" 2>&1 &
P2=$!
CUDA_VISIBLE_DEVICES=0,1 timeout 200 python3 -m torch.distributed.run --standalone --nproc_per_node 2 -m sinklab.cli train quick-60m \
  $COMMON train.micro_batch=16 train.out=runs/ddp > "$OUT/r/ddp.log" 2>&1
wait $P1 $P2
echo "phase A done at $(( $(date +%s) - t0 )) s"
for r in single single_m16 ddp; do cp runs/$r/metrics.jsonl "$OUT/r/${r}_metrics.jsonl"; done
(CUDA_VISIBLE_DEVICES=0 timeout 200 python3 benchmarks/train_step.py --steps 10 --variants dsa --profile 30;
 CUDA_VISIBLE_DEVICES=0 timeout $(($(left) - 10)) python3 benchmarks/train_step.py --steps 10 --variants softmax,dsa,relative \
  --out "$OUT/r/variants.jsonl") > "$OUT/r/g0.log" 2>&1 &
(CUDA_VISIBLE_DEVICES=1 timeout $(($(left) - 10)) python3 -m sinklab.cli sweep sparse --preset quick-60m --data /tmp/py8k \
  --out runs/sweeps --only dsa --set train.steps=1000 train.measure_every=200 train.eval_every=200 train.ckpt_every=200) > "$OUT/r/g1.log" 2>&1 &
(CUDA_VISIBLE_DEVICES=2 timeout 120 python3 benchmarks/gpu_checks.py --only dsa,moba_128 --out "$OUT/r/checks.jsonl";
 CUDA_VISIBLE_DEVICES=2 timeout $(($(left) - 10)) python3 -m sinklab.cli train quick-60m $EVAL train.steps=1000 \
  train.measure_T_long=1024 train.out=runs/dense_long) > "$OUT/r/g2.log" 2>&1 &
(CUDA_VISIBLE_DEVICES=3 timeout $(($(left) - 10)) python3 -m sinklab.cli train quick-60m $EVAL train.steps=1200 \
  model.score=sigmoid model.sigmoid_bias=auto train.micro_batch=8 train.out=runs/sigmoid_bias) > "$OUT/r/g3.log" 2>&1 &
wait
tar czf "$OUT/all.tgz" "$OUT/r" runs/*/metrics.jsonl runs/sweeps/quick-60m/*/metrics.jsonl \
  runs/sweeps/quick-60m/*/ckpt/sinklab.json 2>/dev/null
cat "$OUT/r/checks.jsonl"; grep '"variant"' "$OUT/r/g0.log"; tail -n 1 "$OUT"/r/*.log
rm -rf "$OUT/r"
