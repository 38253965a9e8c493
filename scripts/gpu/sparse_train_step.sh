#!/usr/bin/env bash
# Machine kind: nvidia-h200-x4. Reproduces BENCHMARKS.md §3b: "Training step per sparse pattern" (paper-60m shape,
# T = 2048, each process starting with its own softmax row; DSA with its Triton indexer and with the PyTorch one),
# "MoBA's attention alone against SDPA" (benchmarks/sparse_attention.py, T = 2048 and 16384) and "The training step
# at T = 16384" (batch 4 x 16384; compiling MoBA at this length takes about 5.5 minutes).
# Recorded rows: benchmarks/results/sparse/{train_step,attention,train_step_T16384}_h200.jsonl and the sparse rows of
# benchmarks/results/train_step/field_values_h200.jsonl.
#   OUT=dir bash scripts/gpu/sparse_train_step.sh     (about 8 minutes)
# Writes $OUT/sparse_train_step.jsonl, $OUT/sparse_attention.jsonl and $OUT/sparse_train_step_T16384.jsonl.
BUDGET=570; source "$(dirname "$0")/lib.sh"; need_gpus 4
S="--steps 10 --variants softmax"
step_times 0 sparse_train_step $S,local_global,strided,moba_64,moba_128 &
step_times 1 sparse_train_step $S,nsa_128,moba_gated,moba_sink_token &
(step_times 2 sparse_train_step $S,dsa,dsa_torch_indexer
 CUDA_VISIBLE_DEVICES=2 timeout $(( $(left) - 10 )) python3 benchmarks/sparse_attention.py --T 2048 16384 \
   --out "$OUT/sparse_attention.jsonl" > "$OUT/logs/sparse_attention.log" 2>&1) &
step_times 3 sparse_train_step_T16384 --steps 5 --T 16384 --batch 4 --variants softmax,moba_16k &
wait
stamp done
show "$OUT/sparse_train_step.jsonl" process variant tokens_per_s mfu peak_mem_gb warmup_s
show "$OUT/sparse_attention.jsonl" T batch topk blocks sdpa_ms moba_flex_ms moba_speedup
show "$OUT/sparse_train_step_T16384.jsonl" variant step_ms tokens_per_s warmup_s
