#!/usr/bin/env bash
# (4x H200): DDP on GPUs 0-1 against one GPU (GPU2) now that a step's global batch
# is the same sequences whatever the GPU count; the sum of heads timed alone (GPU2 first); DSA's
# Triton indexer checked and timed against the PyTorch indexer (GPU3); a 300-step DSA run through
# the kernel, to see that it learns (GPU0, after DDP).
set -u
BUDGET=450; source scripts/gpu_env.sh; mkdir -p "$OUT/r"
TS="python3 benchmarks/train_step.py --steps 10"
(CUDA_VISIBLE_DEVICES=3 timeout 60 python3 benchmarks/gpu_checks.py --only dsa_indexer_kernel --out "$OUT/r/checks.jsonl";
 CUDA_VISIBLE_DEVICES=3 timeout $(( $(left) - 10 )) $TS --variants softmax,dsa,dsa_torch_indexer --out "$OUT/r/v3.jsonl") > "$OUT/r/g3.log" 2>&1 &
(CUDA_VISIBLE_DEVICES=2 timeout 100 $TS --variants softmax,head_sum --out "$OUT/r/v2.jsonl") > "$OUT/r/g2.log" 2>&1 &
G2=$!
prepare_py8k > "$OUT/r/prepare.log" 2>&1
COMMON="train.data=/tmp/py8k train.steps=600 train.measure_every=200 train.eval_every=100 train.ckpt_every=100000"
(CUDA_VISIBLE_DEVICES=0,1 timeout 240 torchrun --standalone --nproc_per_node 2 -m sinklab.cli train quick-60m $COMMON \
   train.micro_batch=16 train.out=runs/ddp > "$OUT/r/ddp.log" 2>&1;
 CUDA_VISIBLE_DEVICES=0 timeout $(( $(left) - 15 )) python3 -m sinklab.cli train quick-60m train.data=/tmp/py8k train.steps=300 \
   train.eval_every=50 train.measure_every=100 train.ckpt_every=100000 model.sparse=dsa model.dsa_tokens=256 \
   train.out=runs/dsa_triton > "$OUT/r/dsa_triton.log" 2>&1) &
wait $G2
CUDA_VISIBLE_DEVICES=2 timeout 240 python3 -m sinklab.cli train quick-60m $COMMON train.out=runs/single > "$OUT/r/single.log" 2>&1
wait
tar czf "$OUT/all.tgz" "$OUT/r" runs/*/metrics.jsonl runs/*/config.json 2>/dev/null
cat "$OUT"/r/checks.jsonl "$OUT"/r/v*.jsonl | cut -c1-230; tail -qn 1 "$OUT"/r/*.log
for r in ddp single dsa_triton; do echo $r; grep val_loss runs/$r/metrics.jsonl | cut -c1-200; done
rm -rf "$OUT/r"
