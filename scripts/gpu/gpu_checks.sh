#!/usr/bin/env bash
# Machine kind: nvidia-h200. Reproduces BENCHMARKS.md §3, "The fast paths against the dense path (GPU checks)":
# each listed model variant at T = 256, fp32, on the GPU (SDPA and FlexAttention's compiled kernels; dynamo is reset
# per check) against the same weights on the CPU's dense path, logits and every parameter's gradient; and DSA's
# Triton indexer against the PyTorch formula. Four processes side by side, since compiling is CPU-bound.
# Recorded rows: benchmarks/results/gpu_checks/*.jsonl. The checks take the variant catalogue's sizes of today
# (sinklab/model/variants.py); three recorded rows carry older names: heads_1_wide is wide_head, sink_token_window
# is window_sink_token, nsa_forced is nsa_forced_softmax_gate.
#   OUT=dir bash scripts/gpu/gpu_checks.sh     (about 5 minutes; writes $OUT/gpu_checks.jsonl)
BUDGET=560; source "$(dirname "$0")/lib.sh"; need_gpus 1
ONLY=${ONLY:-alibi,relative,relative_sink_logit,sink_logit,off_by_one,window,prefix_lm,kv_bias,window_sink_token,\
scaled_softmax_window,softpick_alibi_window,wide_head,local_global,strided,moba,moba_forced,moba_gated_sink_logit,nsa,\
nsa_forced_softmax_gate,moba_128,nsa_128,moba_128_sink_token,moba_128_sink_token_logit,dsa_indexer_kernel}
for k in 0 1 2 3; do
  timeout $(( $(left) - 10 )) python3 benchmarks/gpu_checks.py --shard $k/4 --only "$ONLY" --out "$OUT/gpu_checks.jsonl" \
    > "$OUT/logs/gpu_checks_$k.log" 2>&1 &
done
wait
stamp done
show "$OUT/gpu_checks.jsonl" check max_abs_logit_diff max_rel_grad_diff max_rel_score_diff same_topk_share ok
