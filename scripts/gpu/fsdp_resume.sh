#!/usr/bin/env bash
# Machine kind: nvidia-h200-x2. Reproduces BENCHMARKS.md §4, "FSDP killed and resumed": quick-60m under FSDP on two
# GPUs, 60 steps, a checkpoint every 30. One run goes through uninterrupted; a second gets SIGKILL (launcher and both
# workers) once its step-30 checkpoint is whole and step 45 is logged, and the same command with --resume finishes it.
# Recorded rows: experiments/results/fsdp/sigkill_{not_killed,killed,killed_then_resumed}_metrics.jsonl and
# sigkill_config.json (the uninterrupted run was recorded on another host of this kind).
#   OUT=dir bash scripts/gpu/fsdp_resume.sh     (about 6 minutes)
BUDGET=560; source "$(dirname "$0")/lib.sh"; need_gpus 2
prepare_py8k
FS="quick-60m train.data=$DATA train.parallel=fsdp train.micro_batch=16 train.steps=60 train.log_every=1 train.ckpt_every=30
    train.eval_every=30 train.measure_every=30"
PORT=29511 train 0,1 sigkill_not_killed $FS

kill_tree() {  # PID: stop it, SIGKILL its descendants, then it
  local c; kill -STOP "$1" 2>/dev/null
  for c in $(ps -o pid= --ppid "$1"); do kill_tree "$c"; done
  kill -9 "$1" 2>/dev/null
}
rm -rf runs/sigkill
CUDA_VISIBLE_DEVICES=0,1 torchrun --nnodes 1 --nproc_per_node 2 --master_port 29512 -m sinklab.cli train $FS \
  train.out=runs/sigkill > "$OUT/logs/sigkill.log" 2>&1 &
P=$!
until { [ -f runs/sigkill/ckpt/COMPLETE ] && grep -q '"step": 4[5-9]' runs/sigkill/metrics.jsonl 2>/dev/null; } \
      || ! kill -0 $P 2>/dev/null || [ "$(left)" -lt 150 ]; do sleep 0.1; done
kill_tree $P; wait $P 2>/dev/null
cp runs/sigkill/metrics.jsonl "$OUT/sigkill_killed_metrics.jsonl"; cp runs/sigkill/config.json "$OUT/sigkill_config.json"
echo "killed after step $(tail -n 1 runs/sigkill/metrics.jsonl | python3 -c 'import json, sys; print(json.load(sys.stdin)["step"])'); \
checkpoint of step $(cat runs/sigkill/ckpt/COMPLETE)"
PORT=29513 train 0,1 sigkill $FS --resume
cp runs/sigkill/metrics.jsonl "$OUT/sigkill_killed_then_resumed_metrics.jsonl"
python3 scripts/tables.py fsdp_resume --results "$OUT"
