#!/usr/bin/env bash
# Does keeping the later sink tokens lower long-stream perplexity? SmolLM2-135M on the CPU:
# 1. `sinklab measure` names the tokens that are sinks after position 1 (sink_tokens.csv);
# 2. `sinklab stream --eval` scores the same streams with the plain sink cache (policy sink) and with the
#    cache that keeps those tokens past the window (policy keep), at the same cache size.
#    TEXT=../shared/data/austen.txt.xz bash scripts/keep_sink_tokens.sh
set -eu
TEXT=${TEXT:-../shared/data/austen.txt.xz}
OUT=${OUT:-experiments/results/keep_sink_tokens}; TOKENS=${TOKENS:-8000}; STREAMS=${STREAMS:-8}
SLOTS=${SLOTS:-4}; SINKLAB=${SINKLAB:-sinklab}
export SINKLAB_NO_PROGRESS=1
$SINKLAB measure --out "$OUT/measure" | tee "$OUT/measure.txt"
for cache in 64 256; do
  $SINKLAB stream --eval "$TEXT" --cache-size "$cache" --n-sink 4 --tokens "$TOKENS" --streams "$STREAMS" \
    --policies window,sink --keep-sink-tokens "$OUT/measure" --keep-slots "$SLOTS" \
    --out "$OUT/cache$cache" | tee "$OUT/cache$cache.txt"
done
