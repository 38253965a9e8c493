#!/usr/bin/env bash
# (4x H200): DDP scaling, the remaining sparse suite runs, and the
# dense-path variants after the Toeplitz bias change.   OUT=results bash scripts/gpu_final.sh
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD SINKLAB_NO_PROGRESS=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
OUT=${OUT:-results}; mkdir -p "$OUT"; t0=$(date +%s); DEADLINE=$((t0 + ${BUDGET_S:-500}))
left() { echo $((DEADLINE - $(date +%s))); }
SITE=$(python3 -c "import site;print(site.getsitepackages()[0])")
(CUDA_VISIBLE_DEVICES=3 timeout 240 python3 benchmarks/train_step.py --steps 10 --variants relative,softpick,dsa;
 CUDA_VISIBLE_DEVICES=3 timeout $(left) python3 benchmarks/train_step.py --steps 5 --T 16384 --batch 4 --variants moba_16k,softmax) > "$OUT/bench.log" 2>&1 &
python3 -m sinklab.cli data prepare "$SITE/**/*.py" --out /tmp/py8k --tokenizer bpe:8192 --max-chars 250000000 2>&1 | tail -1
SET="train.steps=1000 train.measure_every=200 train.eval_every=200 train.ckpt_every=200"
SW="python3 -m sinklab.cli sweep sparse --preset quick-60m --data /tmp/py8k --out runs/sweeps --set $SET --only"
COMMON="train.data=/tmp/py8k train.measure_every=200 train.eval_every=200 train.ckpt_every=100000 train.steps=${DDP_STEPS:-400}"
(CUDA_VISIBLE_DEVICES=2 timeout 200 python3 -m sinklab.cli train quick-60m $COMMON train.out=/tmp/single;
 CUDA_VISIBLE_DEVICES=2 timeout $(($(left) - 10)) $SW moba_gated) > "$OUT/g2.log" 2>&1 &
(CUDA_VISIBLE_DEVICES=0,1 timeout 200 torchrun --standalone --nproc_per_node 2 -m sinklab.cli train quick-60m $COMMON train.micro_batch=16 train.out=/tmp/ddp;
 CUDA_VISIBLE_DEVICES=0 timeout $(($(left) - 10)) $SW moba_forced_first & CUDA_VISIBLE_DEVICES=1 timeout $(($(left) - 10)) $SW sparse_local_global; wait) > "$OUT/g01.log" 2>&1 &
wait
cp /tmp/single/metrics.jsonl "$OUT/single_metrics.jsonl"; cp /tmp/ddp/metrics.jsonl "$OUT/ddp_metrics.jsonl"
tar czf "$OUT/sparse_runs.tgz" runs/sweeps/quick-60m/*/metrics.jsonl runs/sweeps/quick-60m/*/ckpt/sinklab.json runs/sweeps/quick-60m/*/train.log 2>/dev/null
tail -n 4 "$OUT"/*.log
