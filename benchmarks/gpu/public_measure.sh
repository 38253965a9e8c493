#!/usr/bin/env bash
# One GPU (H100 or H200). The public `sinklab.measure(model, ...)` call on
# fresh random bf16 builds of the SmolLM2-135M and Llama-3-8B shapes (no refusal; alpha against
# SINKLAB_FUSED=0; time against a plain forward), and cuDNN's attention across input layouts. Rows under $OUT.
#   bash benchmarks/gpu/public_measure.sh          (BENCHMARKS.md §2, the public call)
# Needs transformers >= 5 under /tmp/site (pip install --target /tmp/site "transformers>=5"); where
# /tmp/site has none, the script installs .carry/transformers-*.whl there.
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD SINKLAB_NO_PROGRESS=1 HF_HUB_OFFLINE=1
OUT=${OUT:-results/public_measure}; mkdir -p "$OUT"; t0=$(date +%s)
[ -d /tmp/site/transformers ] || python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site \
  .carry/transformers-*.whl || exit 1
python3 -c "import torch, transformers, triton; print(torch.__version__, transformers.__version__, triton.__version__)"
timeout 60 python3 benchmarks/gpu_cudnn_layouts.py --out "$OUT/cudnn_layouts.jsonl" 2>&1 | tail -12
echo "== public measure at $(( $(date +%s) - t0 )) s"
timeout $(( ${BUDGET_S:-540} - ($(date +%s) - t0) )) python3 benchmarks/gpu_public_measure.py --shapes "${SHAPES:-8b,135m}" --builds "${BUILDS:-20}" --builds-8b "${BUILDS_8B:-3}" \
  --deadline-s $(( ${BUDGET_S:-540} - 60 - ($(date +%s) - t0) )) --out "$OUT/public_measure.jsonl" 2>&1 | tail -100
echo "== done at $(( $(date +%s) - t0 )) s"
