#!/usr/bin/env bash
# One GPU (H100 or H200). The fused path's parts timed alone (per layer, T = 32768), a profile of
# one 135M-shape measurement at T = 32768, and the GPU checks. Results under $OUT.
#   bash benchmarks/gpu/measure_kernels.sh
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD SINKLAB_NO_PROGRESS=1 HF_HUB_OFFLINE=1
OUT=${OUT:-results/gpu_measure}; mkdir -p "$OUT"
timeout 150 python3 benchmarks/gpu_checks_measure.py --out "$OUT/measure_checks.jsonl" 2>&1 | tail -12
timeout 200 python3 benchmarks/measure_kernels.py --T 32768 --profile 135m --out "$OUT/measure_kernels.jsonl" 2>&1 | tail -60
# the 8B shape at T = 8192, n = 4: where the time goes
timeout 150 python3 benchmarks/measure_kernels.py --shapes "" --T 8192 --n 4 --profile 8b --out "$OUT/measure_kernels_8b.jsonl" 2>&1 | tail -45
