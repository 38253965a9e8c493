#!/usr/bin/env bash
# (4x H200): the quick-60m preset at its full 5,000 steps, sigmoid without
# normalisation (GPUs 0-1) and softmax (GPUs 2-3), each as 2-GPU DDP on the one-GPU batches; then
# the per-head table of both final checkpoints on the trainer's probe and on document starts (the
# paper's probe); the compiled GPU checks of the refactored LSE-merge paths; and an FSDP run killed
# with SIGKILL and resumed, against an uninterrupted one. (In the call the FSDP part stopped at once:
# it lacked train.micro_batch=16 for 2 GPUs. gpu_sigmoid_seeds_fsdp_sigkill.sh has the working check.)
set -u
BUDGET=585; source scripts/gpu_env.sh; mkdir -p "$OUT/r"
prepare_py8k > "$OUT/r/prepare.log" 2>&1
COMMON="train.data=/tmp/py8k train.steps=5000 train.measure_every=250 train.eval_every=500 train.ckpt_every=1000"
(CUDA_VISIBLE_DEVICES=0,1 timeout $(( $(left) - 45 )) torchrun $TWO --master_port 29501 -m sinklab.cli train quick-60m $COMMON model.score=sigmoid train.micro_batch=8 \
   train.out=runs/sigmoid5k > "$OUT/r/sigmoid5k.log" 2>&1
 [ "$(left)" -gt 30 ] && heads sigmoid5k 0) &
CUDA_VISIBLE_DEVICES=2,3 timeout 330 torchrun $TWO --master_port 29502 -m sinklab.cli train quick-60m $COMMON train.micro_batch=16 train.out=runs/softmax5k > "$OUT/r/softmax5k.log" 2>&1
heads softmax5k 2 &
H2=$!
CUDA_VISIBLE_DEVICES=3 timeout 90 python3 benchmarks/gpu_checks.py \
  --only relative,relative_sink_logit,moba_128_sink_token,moba_128_sink_token_logit --out "$OUT/r/checks.jsonl" > "$OUT/r/checks.log" 2>&1
wait $H2
echo "FSDP resume test starts at $(( $(date +%s) - t0 )) s, $(left) s left"
if [ "$(left)" -gt 150 ]; then
  FS="train.data=/tmp/py8k train.steps=60 train.log_every=1 train.ckpt_every=30 train.eval_every=30 train.measure_every=30 train.parallel=fsdp"
  CUDA_VISIBLE_DEVICES=2,3 timeout 90 torchrun $TWO --master_port 29503 -m sinklab.cli train quick-60m $FS train.out=runs/fsdp_ref > "$OUT/r/fsdp_ref.log" 2>&1
  CUDA_VISIBLE_DEVICES=2,3 setsid torchrun $TWO --master_port 29504 -m sinklab.cli train quick-60m $FS train.out=runs/fsdp_kill > "$OUT/r/fsdp_kill.log" 2>&1 &
  P=$!
  for _ in $(seq 900); do  # kill once the step-30 checkpoint is whole and training has gone past step 40
    if [ -f runs/fsdp_kill/ckpt/COMPLETE ] && grep -q '"step": 4[0-9]' runs/fsdp_kill/metrics.jsonl 2>/dev/null; then break; fi
    sleep 0.1
  done
  kill -9 -- -$P; wait $P 2>/dev/null
  echo "killed at step $(tail -1 runs/fsdp_kill/metrics.jsonl | cut -c1-20)" >> "$OUT/r/fsdp_kill.log"
  cp runs/fsdp_kill/metrics.jsonl "$OUT/r/fsdp_killed_part.jsonl"
  CUDA_VISIBLE_DEVICES=2,3 timeout $(( $(left) - 25 )) torchrun $TWO --master_port 29505 -m sinklab.cli train quick-60m $FS train.out=runs/fsdp_kill --resume >> "$OUT/r/fsdp_kill.log" 2>&1
fi
wait
tar czf "$OUT/all.tgz" "$OUT/r" runs/*/metrics.jsonl runs/*/config.json 2>/dev/null
tail -qn 2 "$OUT"/r/*.log | cut -c1-300; cut -c1-200 "$OUT/r/checks.jsonl"
for r in sigmoid5k softmax5k; do echo $r; grep val_loss runs/$r/metrics.jsonl | cut -c1-330; done
rm -rf "$OUT/r"
