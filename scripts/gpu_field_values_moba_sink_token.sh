#!/usr/bin/env bash
# (4x H200): the issue-3 field values never timed (GPUs 0-2, each with its own
# softmax row), MoBA + sink token on its new flex path and DSA in the same harness (GPU3), then
# FSDP with the paper-1b preset on GPUs 0-1 once their timings are done.
set -u
BUDGET=560; source scripts/gpu_env.sh; mkdir -p "$OUT/r"
TS="python3 benchmarks/train_step.py --steps 10"
(prepare_py8k > "$OUT/r/prepare.log" 2>&1) & P=$!
(CUDA_VISIBLE_DEVICES=0 timeout $(( $(left) - 10 )) $TS --variants softmax,sinusoidal,layernorm,reglu,gelu,swish,gate_headwise --out "$OUT/r/v0.jsonl") > "$OUT/r/g0.log" 2>&1 & A=$!
(CUDA_VISIBLE_DEVICES=1 timeout $(( $(left) - 10 )) $TS --variants softmax,k_bias_shared,k_bias_d16,value_bias_fixed,head_sum,elu1_norm --out "$OUT/r/v1.jsonl") > "$OUT/r/g1.log" 2>&1 & B=$!
(CUDA_VISIBLE_DEVICES=2 timeout $(( $(left) - 10 )) $TS --variants softmax,sigmoid_logT,kernel_identity,kernel_mlp,kernel_elu1_max_abs --out "$OUT/r/v2.jsonl") > "$OUT/r/g2.log" 2>&1 &
(CUDA_VISIBLE_DEVICES=3 timeout 120 python3 benchmarks/gpu_checks.py --only moba_128_sink_token,moba_128_sink_token_logit --out "$OUT/r/checks.jsonl";
 CUDA_VISIBLE_DEVICES=3 timeout $(( $(left) - 10 )) $TS --variants softmax,moba_sink_token,dsa,moba_128 --out "$OUT/r/v3.jsonl") > "$OUT/r/g3.log" 2>&1 &
wait $P $A $B
echo "GPUs 0-1 free at $(( $(date +%s) - t0 )) s"
CUDA_VISIBLE_DEVICES=0,1 timeout $(( $(left) - 25 )) torchrun --standalone --nproc_per_node 2 -m sinklab.cli train paper-1b \
  train.data=/tmp/py8k model.vocab_size=8192 train.global_batch=32 train.steps=40 train.log_every=5 train.eval_every=20 \
  train.measure_every=20 train.out=runs/fsdp1b > "$OUT/r/fsdp1b.log" 2>&1
echo "fsdp exit $? at $(( $(date +%s) - t0 )) s"; ls -la runs/fsdp1b runs/fsdp1b/ckpt* 2>/dev/null | head -20
wait
tar czf "$OUT/all.tgz" "$OUT/r" runs/*/metrics.jsonl runs/*/config.json 2>/dev/null
cat "$OUT"/r/v*.jsonl "$OUT/r/checks.jsonl" 2>/dev/null | cut -c1-260; tail -n 3 "$OUT"/r/*.log; cat runs/fsdp1b/metrics.jsonl 2>/dev/null | cut -c1-300
rm -rf "$OUT/r"
