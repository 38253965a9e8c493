#!/usr/bin/env bash
# Machine kind: nvidia-h200-x4. Reproduces BENCHMARKS.md §3, "Training step per model variant": the step of every
# model variant at the paper-60m shape (T = 2048, batch 32, bf16, torch.compile), four processes side by side, one
# per GPU, each starting with its own softmax row; and the FlexAttention probe cited below the table.
# Recorded rows: benchmarks/results/train_step/{variants,field_values,flex_variants,flex_probe}_h200.jsonl.
#   OUT=dir bash scripts/gpu/train_step_variants.sh     (about 8 minutes)
# Writes $OUT/train_step_variants.jsonl (each row with its host and process) and $OUT/flex_probe.jsonl.
BUDGET=570; source "$(dirname "$0")/lib.sh"; need_gpus 4
S="--steps 10 --variants softmax"
step_times 0 train_step_variants $S,heads_1,nope,learned,alibi,post_norm,geglu,relu,gqa_2,kv_bias,k_bias,v_bias &
step_times 1 train_step_variants $S,sink_token,scaled_softmax,sink_logit,off_by_one,gate_elementwise,window_512,prefix_lm,sigmoid,sigmoid_norm &
(step_times 2 train_step_variants $S,sinusoidal,layernorm,reglu,gelu,swish,gate_headwise,k_bias_shared,k_bias_d16,value_bias_fixed,elu1,kernel_elu1
 CUDA_VISIBLE_DEVICES=2 timeout $(( $(left) - 10 )) python3 benchmarks/flex_probe.py 2> "$OUT/logs/flex_probe.log" | grep '^{' > "$OUT/flex_probe.jsonl") &
(step_times 3 train_step_variants $S,elu1_norm,sigmoid_logT,kernel_identity,kernel_mlp,kernel_elu1_max_abs,head_sum,relative,softpick
 step_times 3 train_step_variants --steps 10 --vocab 256 --variants softmax) &
wait
stamp done
show "$OUT/train_step_variants.jsonl" process variant vocab micro_batch tokens_per_s mfu peak_mem_gb
show "$OUT/flex_probe.jsonl" kind options ms
