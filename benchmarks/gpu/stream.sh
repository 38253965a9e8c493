#!/bin/bash
# Streaming on one GPU (H100 or H200): the sink cache's CUDA tests, decoding speed against the previous cache and
# StreamingLLM's loop (batch 1, 8, 32), and one 100k-token stream (perplexity and memory per 10k block).
# Run from the repo root. Needs transformers >= 5 under /tmp/site (where /tmp/site has none, the script installs
# .carry/transformers-*.whl there), and for the long step the token ids of
# `python benchmarks/stream_long.py --save-ids .carry/stream_ids.pt`.
#   STEPS="speed tests long" OUT=dir bash benchmarks/gpu/stream.sh   (each step has a time limit, T_<STEP>;
#   LONG_DECODE picks the long stream's decoding, default auto = one CUDA graph per token). The three steps'
#   default limits add up to 16 minutes: run them in groups (BENCHMARKS.md §5).
export PYTHONUNBUFFERED=1 SINKLAB_NO_PROGRESS=1 HF_HUB_OFFLINE=1
OUT=${OUT:-results}; STEPS=${STEPS:-"speed long tests"}; t0=$(date +%s); mkdir -p "$OUT"
[ -d /tmp/site/transformers ] || python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .carry/transformers-*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
python3 -c "import torch, transformers; print(torch.__version__, transformers.__version__, torch.cuda.get_device_name())" \
  | tee "$OUT/stream_env.txt"
has() { [[ " $STEPS " == *" $1 "* ]]; }
stamp() { echo "== $1 at $(( $(date +%s) - t0 )) s"; }
if has speed; then stamp speed
  timeout ${T_SPEED:-300} python3 benchmarks/stream_speed.py --device cuda --batch 1 8 32 --variants graph,compile,eager,previous_dynamic,reference \
    --out "$OUT/stream_h200.jsonl"
fi
if has tests; then stamp tests
  timeout ${T_TESTS:-120} python3 -m pytest tests/test_stream.py -q -p no:cacheprovider -k cuda 2>&1 | tail -15 | tee "$OUT/stream_cuda_tests.txt"
fi
if has long; then stamp long
  timeout ${T_LONG:-540} python3 benchmarks/stream_long.py --device cuda --tokens 100000 --ids .carry/stream_ids.pt \
    --decode ${LONG_DECODE:-auto} \
    --out "$OUT/stream_long_h200.jsonl"
fi
stamp done
