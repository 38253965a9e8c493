#!/usr/bin/env bash
# (4x H200):   OUT=results bash scripts/gpu_ddp_micro32_sigmoid_2400.sh
# Phase A (nothing else compiling): 1 GPU vs DDP on 2 GPUs, quick-60m, global batch 32, side by side;
#   GPU3 meanwhile trains the sigmoid-without-normalisation run further (2400 steps).
# Phase B: GPU0 variant step times (relative: band + far, DSA: flex token mask); GPU1 MoBA and NSA
#   with the long probe; GPU2 compiled GPU checks, then the T = 16384 training step.
set -u
BUDGET=570; source scripts/gpu_env.sh; mkdir -p "$OUT"
prepare_py8k
EVAL="train.data=/tmp/py8k train.measure_every=200 train.eval_every=200 train.ckpt_every=100000"
CUDA_VISIBLE_DEVICES=3 timeout $(($(left) - 20)) python3 -m sinklab.cli train quick-60m $EVAL train.steps=${SIG_STEPS:-2400} \
  model.score=sigmoid train.micro_batch=8 train.out=runs/sigmoid > "$OUT/sigmoid.log" 2>&1 &
SIG=$!
COMMON="$EVAL train.steps=${DDP_STEPS:-400}"
CUDA_VISIBLE_DEVICES=2 timeout 240 python3 -m sinklab.cli train quick-60m $COMMON train.out=runs/single > "$OUT/single.log" 2>&1 &
SINGLE=$!
CUDA_VISIBLE_DEVICES=0,1 timeout 240 python3 -m torch.distributed.run --standalone --nproc_per_node 2 -m sinklab.cli train quick-60m \
  $COMMON train.micro_batch=16 train.out=runs/ddp > "$OUT/ddp.log" 2>&1
wait $SINGLE
echo "phase A done at $(( $(date +%s) - t0 )) s"
(CUDA_VISIBLE_DEVICES=0 timeout $(($(left) - 15)) python3 benchmarks/train_step.py --steps 10 --variants ${V0:-softmax,relative,softpick,dsa,moba_128} \
  --out "$OUT/variants.jsonl") > "$OUT/g0.log" 2>&1 &
(CUDA_VISIBLE_DEVICES=1 timeout $(($(left) - 15)) python3 -m sinklab.cli sweep sparse --preset quick-60m --data /tmp/py8k \
  --out runs/sweeps --only ${ONLY:-moba,nsa} --set train.steps=1000 train.measure_every=200 train.eval_every=200 train.ckpt_every=200) > "$OUT/g1.log" 2>&1 &
(CUDA_VISIBLE_DEVICES=2 timeout 200 python3 benchmarks/gpu_checks.py --out "$OUT/checks.jsonl" \
  --only relative,relative_sink_logit,alibi,sink_logit,window,local_global,strided,moba_128,nsa_128,dsa,moba_gated_sink_logit;
 CUDA_VISIBLE_DEVICES=2 timeout $(($(left) - 15)) python3 benchmarks/train_step.py --steps 5 --T 16384 --batch 4 \
  --variants moba_16k,softmax --out "$OUT/t16k.jsonl") > "$OUT/g2.log" 2>&1 &
wait
cp runs/single/metrics.jsonl "$OUT/single_metrics.jsonl"; cp runs/ddp/metrics.jsonl "$OUT/ddp_metrics.jsonl"
tar czf "$OUT/runs.tgz" runs/sigmoid/metrics.jsonl runs/sweeps/quick-60m/*/metrics.jsonl runs/sweeps/quick-60m/*/ckpt/sinklab.json \
  runs/sweeps/quick-60m/*/train.log runs/*/train.log 2>/dev/null
tail -n 3 "$OUT"/*.log
