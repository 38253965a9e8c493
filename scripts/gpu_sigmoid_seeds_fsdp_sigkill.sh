#!/usr/bin/env bash
# (4x H200, or 2x with seed 2 only; SEEDS="..." overrides, one pair of GPUs
# each): seeds 2 and 3 of sigmoid without normalisation at the quick-60m preset's 5,000 steps (GPUs 0-1 and 2-3, 2-GPU DDP each), measured
# on 256 probe windows instead of 64; per-head tables of the final checkpoints on 256 windows and on
# the held-out document starts. Alongside on
# the last two GPUs: an FSDP run killed with SIGKILL after its step-30 checkpoint and resumed; the
# killed run's own rows past step 30 are the uninterrupted trajectory the resumed run must match.
set -u
BUDGET=585; source scripts/gpu_env.sh; mkdir -p "$OUT/r"
prepare_py8k > "$OUT/r/prepare.log" 2>&1
COMMON="train.data=/tmp/py8k train.steps=5000 train.measure_every=250 train.measure_n=256 train.eval_every=500 train.ckpt_every=1000"
N=$(nvidia-smi -L | wc -l); SEEDS=${SEEDS:-$( [ "$N" -ge 4 ] && echo "2 3" || echo 2 )}; LAST="$((N - 2)),$((N - 1))"
g=0
for s in $SEEDS; do
  (CUDA_VISIBLE_DEVICES=$g,$((g + 1)) timeout $(( $(left) - 45 )) torchrun $TWO --master_port 2951$s -m sinklab.cli train quick-60m \
     $COMMON model.score=sigmoid train.micro_batch=8 train.seed=$s train.out=runs/sigmoid5k_seed$s > "$OUT/r/sigmoid5k_seed$s.log" 2>&1
   heads sigmoid5k_seed$s $g 256) &
  g=$((g + 2))
done
sleep 60  # the FSDP test shares the last two GPUs once the seed run there has compiled
FS="train.data=/tmp/py8k train.steps=60 train.micro_batch=16 train.log_every=1 train.ckpt_every=30 train.eval_every=30 train.measure_every=30 train.parallel=fsdp"
CUDA_VISIBLE_DEVICES=$LAST torchrun $TWO --master_port 29504 -m sinklab.cli train quick-60m $FS train.out=runs/fsdp_kill >> "$OUT/r/fsdp_kill.log" 2>&1 &
P=$!
for _ in $(seq 1500); do  # kill once the step-30 checkpoint is whole and training has reached step 45
  if [ -f runs/fsdp_kill/ckpt/COMPLETE ] && grep -q '"step": 4[5-9]' runs/fsdp_kill/metrics.jsonl 2>/dev/null; then break; fi
  sleep 0.1
done
pkill -9 -f "train.out=runs/fsdp_kill" || kill -9 $P; wait $P 2>/dev/null  # the launcher and both workers (call 2's setsid forked: nothing was killed)
cp runs/fsdp_kill/metrics.jsonl "$OUT/r/fsdp_killed_part.jsonl"
echo "killed after: $(tail -1 runs/fsdp_kill/metrics.jsonl | cut -c1-20); checkpoint step $(cat runs/fsdp_kill/ckpt/COMPLETE)" >> "$OUT/r/fsdp_kill.log"
CUDA_VISIBLE_DEVICES=$LAST timeout 150 torchrun $TWO --master_port 29505 -m sinklab.cli train quick-60m $FS train.out=runs/fsdp_kill --resume >> "$OUT/r/fsdp_kill.log" 2>&1
cp runs/fsdp_kill/metrics.jsonl "$OUT/r/fsdp_resumed_all.jsonl"
wait
tar czf "$OUT/all.tgz" "$OUT/r" runs/*/metrics.jsonl runs/*/config.json 2>/dev/null
tail -qn 2 "$OUT"/r/*.log | cut -c1-300
for r in $(ls -d runs/sigmoid5k_seed* | xargs -n1 basename); do echo $r; grep '"sink_1"' runs/$r/metrics.jsonl | cut -c1-300; done
rm -rf "$OUT/r"
