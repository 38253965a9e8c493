#!/usr/bin/env bash
# One GPU (H100 or H200). What SinkTracker costs training at the quick-60m shape and batch (32 x 2048,
# bf16 autocast), measuring every 200 steps: blocks with and without the tracker, alternating. Row under $OUT.
#   bash benchmarks/gpu/tracker_overhead.sh          (BENCHMARKS.md, tracker overhead)
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD SINKLAB_NO_PROGRESS=1 HF_HUB_OFFLINE=1
OUT=${OUT:-results/tracker}; mkdir -p "$OUT"
[ -d /tmp/site/transformers ] || python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site \
  .carry/transformers-*.whl || exit 1
python3 benchmarks/tracker_overhead.py --shape quick-60m --device cuda --batch 32 --seq 2048 --every 200 \
  --rounds "${ROUNDS:-2}" --out "$OUT/tracker_overhead_gpu.jsonl"
