#!/usr/bin/env bash
# Machine kind: nvidia-h200. EXPERIMENTS.md §3, the protocol's levers at equal GPU time: four runs at once on one GPU,
# each cut at the deadline (the LR is constant after warm-up, so a cut run is its schedule's prefix), Sink_1 at
# T = 64 every 250 steps: faithful-60m as it is, at context 512 and 256 with the same tokens per step, and a
# smaller model (d 384, 6 layers) at context 512. Micro-batches of half the batch, so four fit on an H100.
#   OUT=dir bash scripts/gpu/calibrate_protocol.sh
# Recorded rows: experiments/results/calibration/{NAME}_metrics.jsonl and _config.json, py8k_manifest.json.
BUDGET=400; source "$(dirname "$0")/lib.sh"; need_gpus 1
prepare_py8k
COMMON="train.data=$DATA train.steps=20000 train.measure_every=250 train.eval_every=1000 train.ckpt_every=100000"
RESERVE=15 train 0 ctx2048 faithful-60m $COMMON train.micro_batch=16 &
RESERVE=15 train 0 ctx512 faithful-60m $COMMON train.seq_len=512 train.global_batch=128 train.micro_batch=64 &
RESERVE=15 train 0 ctx256 faithful-60m $COMMON train.seq_len=256 train.global_batch=256 train.micro_batch=128 &
RESERVE=15 train 0 small_ctx512 faithful-60m $COMMON train.seq_len=512 train.global_batch=128 train.micro_batch=64 \
  model.d_model=384 model.n_layers=6 model.n_heads=6 model.d_ffn=1536 &
wait
for f in "$OUT"/*_metrics.jsonl; do show "$f" step sink_1 val_loss tokens_per_s | tail -n 3; done
