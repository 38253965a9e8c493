#!/usr/bin/env bash
# Issue 3 and 7 on one 4x H200 host: fast-path correctness (GPU against the CPU dense path), the
# training-step table of every variant and sparse pattern, and MoBA against SDPA at long context.
#   OUT=results bash scripts/gpu_variants.sh
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
OUT=${OUT:-results}; mkdir -p "$OUT"; B=${BUDGET_S:-500}
V1=relative,heads_1,softpick,softmax,nope,learned,alibi,post_norm,geglu,relu,gqa_2,kv_bias
V2=k_bias,v_bias,sink_token,scaled_softmax,sink_logit,off_by_one,gate_elementwise,window_512,prefix_lm,sigmoid,sigmoid_norm,elu1,kernel_elu1
V3=softmax,local_global,strided,moba_64,moba_128,moba_gated,nsa_64,nsa_128,moba_sink_token,dsa
(CUDA_VISIBLE_DEVICES=0 timeout $B python3 benchmarks/gpu_checks.py --out "$OUT/checks.jsonl";
 CUDA_VISIBLE_DEVICES=0 timeout 120 python3 benchmarks/sparse_attention.py --out "$OUT/sparse_attention.jsonl") > "$OUT/g0.log" 2>&1 &
CUDA_VISIBLE_DEVICES=1 timeout $B python3 benchmarks/train_step.py --steps 10 --variants $V1 --out "$OUT/variants.jsonl" > "$OUT/g1.log" 2>&1 &
CUDA_VISIBLE_DEVICES=2 timeout $B python3 benchmarks/train_step.py --steps 10 --variants $V2 --out "$OUT/variants.jsonl" > "$OUT/g2.log" 2>&1 &
(CUDA_VISIBLE_DEVICES=3 timeout 360 python3 benchmarks/train_step.py --steps 10 --variants $V3 --out "$OUT/sparse.jsonl";
 CUDA_VISIBLE_DEVICES=3 timeout 150 python3 benchmarks/train_step.py --steps 5 --T 16384 --batch 4 --variants softmax,moba_16k --out "$OUT/sparse_16k.jsonl") > "$OUT/g3.log" 2>&1 &
wait
tail -n 3 "$OUT"/g*.log
