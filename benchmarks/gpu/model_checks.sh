#!/usr/bin/env bash
# One GPU (H100 or H200). The model's fast paths on the GPU against the dense CPU path,
# compiled (logits and every parameter's gradient, each entry of the shared variant catalogue; 8 processes
# side by side, since compiling is CPU-bound), and a resumed GPU run restoring the CUDA generator.
#   OUT=dir bash benchmarks/gpu/model_checks.sh     (writes model_checks.jsonl and resume_rng.jsonl)
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD SINKLAB_NO_PROGRESS=1 TORCHINDUCTOR_COMPILE_THREADS=2
OUT=${OUT:-results/model_checks}; mkdir -p "$OUT"; SHARDS=${SHARDS:-8}; t0=$(date +%s)
for k in $(seq 0 $((SHARDS - 1))); do
  timeout ${T_CHECKS:-500} python3 benchmarks/gpu_checks.py --shard $k/$SHARDS --out "$OUT/model_checks.jsonl" \
    >> "$OUT/model_checks.log" 2>&1 &
done
timeout 200 python3 benchmarks/gpu_resume_rng.py --out "$OUT/resume_rng.jsonl" 2>&1 | tail -n 30
wait
echo "== checks done at $(( $(date +%s) - t0 )) s"
python3 - "$OUT" <<'PY'
import json, sys
sys.path.insert(0, "benchmarks")
from gpu_checks import CHECKS
rows = [json.loads(l) for l in open(f"{sys.argv[1]}/model_checks.jsonl")]
bad = [r["check"] for r in rows if not r.get("ok")]
missing = sorted({*CHECKS, "dsa_indexer_kernel"} - {r["check"] for r in rows})  # shards cut short by the limit
print(f"{len(rows)} checks, {len(rows) - len(bad)} ok; failed: {bad or 'none'}; not run: {missing or 'none'}")
PY
grep -E "Error|error" "$OUT/model_checks.log" | sort | uniq -c | head -n 8
