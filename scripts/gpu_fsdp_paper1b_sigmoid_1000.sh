#!/usr/bin/env bash
# (4x H200): FSDP paper-1b on GPUs 0-1 (after the recorder fix), then the sparse
# suite's MoBA + sink token and MoBA + sigmoid runs there; DSA for 1,000 steps (GPU2); the sum of
# heads re-timed with the attention-width FLOP count, then a 1,000-step sigmoid run and its per-head
# table (GPU3).
set -u
BUDGET=570; source scripts/gpu_env.sh; mkdir -p "$OUT/r"
(CUDA_VISIBLE_DEVICES=3 timeout 150 python3 benchmarks/train_step.py --steps 10 --variants softmax,head_sum --out "$OUT/r/v3.jsonl") > "$OUT/r/g3.log" 2>&1 & G3=$!
prepare_py8k > "$OUT/r/prepare.log" 2>&1
SET="train.steps=1000 train.measure_every=200 train.eval_every=200 train.ckpt_every=200"
SW="python3 -m sinklab.cli sweep sparse --preset quick-60m --data /tmp/py8k --out runs/sweeps"
(CUDA_VISIBLE_DEVICES=2 timeout $(( $(left) - 15 )) $SW --only dsa --set $SET) > "$OUT/r/dsa.log" 2>&1 &
(wait $G3; CUDA_VISIBLE_DEVICES=3 timeout $(( $(left) - 40 )) python3 -m sinklab.cli train quick-60m train.data=/tmp/py8k \
   train.steps=1000 model.score=sigmoid train.micro_batch=8 train.measure_every=200 train.eval_every=200 \
   train.ckpt_every=100000 train.out=runs/sigmoid1k;
 CUDA_VISIBLE_DEVICES=3 timeout 60 python3 scripts/sink_heads.py runs/sigmoid1k/ckpt --data /tmp/py8k --out "$OUT/r/sigmoid_heads.json") > "$OUT/r/sigmoid.log" 2>&1 &
CUDA_VISIBLE_DEVICES=0,1 timeout 240 torchrun --standalone --nproc_per_node 2 -m sinklab.cli train paper-1b \
  train.data=/tmp/py8k model.vocab_size=8192 train.global_batch=32 train.steps=30 train.log_every=5 train.eval_every=15 \
  train.measure_every=15 train.out=runs/fsdp1b > "$OUT/r/fsdp1b.log" 2>&1
echo "fsdp exit $? at $(( $(date +%s) - t0 )) s"; ls -la runs/fsdp1b/ckpt 2>/dev/null
(CUDA_VISIBLE_DEVICES=0 timeout $(( $(left) - 15 )) $SW --only moba_sink_token --set $SET) > "$OUT/r/moba_sink_token.log" 2>&1 &
(CUDA_VISIBLE_DEVICES=1 timeout $(( $(left) - 15 )) $SW --only moba_sigmoid --set $SET train.micro_batch=8) > "$OUT/r/moba_sigmoid.log" 2>&1 &
wait
tar czf "$OUT/all.tgz" "$OUT/r" runs/*/metrics.jsonl runs/*/config.json runs/sweeps/quick-60m/*/metrics.jsonl \
  runs/sweeps/quick-60m/*/ckpt/sinklab.json runs/sweeps/quick-60m/*/train.log 2>/dev/null
cat "$OUT"/r/v3.jsonl | cut -c1-220; tail -n 2 "$OUT"/r/*.log; head -5 "$OUT/r/sigmoid.log"
for f in runs/fsdp1b/metrics.jsonl runs/sigmoid1k/metrics.jsonl runs/sweeps/quick-60m/*/metrics.jsonl; do echo "$f"; grep val_loss "$f" | tail -2 | cut -c1-330; done
rm -rf "$OUT/r"
