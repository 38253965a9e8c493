#!/usr/bin/env bash
# Issue 7's GPU runs and the leftovers of the variant table, on one 4x H200 host:
#   OUT=results bash scripts/gpu_sparse.sh
# GPU0: FlexAttention option probe, then variants; GPU1: sparse patterns at T=2048 and 16384;
# GPU2+3: the sparse suite at quick-60m through `sinklab sweep` (one run per GPU).
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD SINKLAB_NO_PROGRESS=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
OUT=${OUT:-results}; mkdir -p "$OUT"; t0=$(date +%s); DEADLINE=$((t0 + ${BUDGET_S:-540}))
left() { echo $((DEADLINE - $(date +%s))); }
SITE=$(python3 -c "import site;print(site.getsitepackages()[0])")
(python3 -m sinklab.cli data prepare "$SITE/**/*.py" --out /tmp/py8k --tokenizer bpe:8192 --max-chars 250000000 2>&1 | tail -1;
 echo "data prepared in $(( $(date +%s) - t0 )) s") > "$OUT/data.log" 2>&1 &
DP=$!
(CUDA_VISIBLE_DEVICES=0 timeout 200 python3 benchmarks/flex_probe.py;
 CUDA_VISIBLE_DEVICES=0 timeout $(left) python3 benchmarks/train_step.py --steps 10 --variants ${V0:-relative,softpick,elu1,kernel_elu1};
 CUDA_VISIBLE_DEVICES=0 timeout $(left) python3 benchmarks/train_step.py --steps 10 --vocab 256 --variants softmax) > "$OUT/g0.log" 2>&1 &
(CUDA_VISIBLE_DEVICES=1 timeout 330 python3 benchmarks/train_step.py --steps 10 --variants ${V1:-nsa_128,moba_gated,moba_sink_token,dsa};
 CUDA_VISIBLE_DEVICES=1 timeout $(left) python3 benchmarks/train_step.py --steps 5 --T 16384 --batch 4 --variants moba_16k,softmax) > "$OUT/g1.log" 2>&1 &
wait $DP; cat "$OUT/data.log"
SET="train.steps=${STEPS:-1000} train.measure_every=200 train.eval_every=200 train.ckpt_every=200"
CUDA_VISIBLE_DEVICES=2,3 timeout $(($(left) - 15)) python3 -m sinklab.cli sweep sparse --preset quick-60m --data /tmp/py8k \
  --out runs/sweeps --only "${ONLY:-sparse_local,moba,nsa,nsa_forced_first}" --set $SET > "$OUT/sweep.log" 2>&1
tar czf "$OUT/sparse_runs.tgz" runs/sweeps/quick-60m/*/metrics.jsonl runs/sweeps/quick-60m/*/ckpt/sinklab.json runs/sweeps/quick-60m/*/train.log 2>/dev/null
wait
tail -n 5 "$OUT"/*.log
