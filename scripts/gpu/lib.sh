# Sourced by the scripts in scripts/gpu/ (run from the repository root): the environment, $OUT, a deadline
# and the helpers below. BUDGET_S overrides a script's BUDGET (seconds until runs are stopped, so
# that their metrics are copied to $OUT in time; the GPU machines stop a command after 600 s).
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD SINKLAB_NO_PROGRESS=1
# NVLink multicast stays off (NCCL, torch's symmetric memory, NVSHMEM): on the shared H200 hosts it can put every
# GPU of the host out of service
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
OUT=${OUT:-results}; mkdir -p "$OUT/logs"; t0=$(date +%s); DEADLINE=$((t0 + ${BUDGET_S:-${BUDGET:-560}}))
DATA=${DATA:-/tmp/py8k}
left() { echo $((DEADLINE - $(date +%s))); }
stamp() { echo "== $1 at $(( $(date +%s) - t0 )) s"; }

need_gpus() {  # N: stop at once unless this machine has N GPUs
  local n; n=$(nvidia-smi -L 2>/dev/null | wc -l)
  [ "$n" -ge "$1" ] || { echo "this script needs $1 GPUs; this machine has $n"; exit 2; }
}

prepare_py8k() {  # the 8k byte-level BPE over the host's own site-packages (EXPERIMENTS.md §1), about 35 s
  local site; site=$(python3 -c "import site; print(site.getsitepackages()[0])")
  [ -f "$DATA/manifest.json" ] || python3 -m sinklab.cli data prepare "$site/**/*.py" --out "$DATA" --tokenizer bpe:8192 \
    --max-chars 250000000 --encoding-errors replace > "$OUT/logs/prepare.log" 2>&1
  cp "$DATA/manifest.json" "$OUT/py8k_manifest.json" && stamp "py8k prepared"
}

train() {  # GPUS NAME ARGS...: `sinklab train ARGS` into runs/NAME on GPUS ("2" on one GPU, "0,1" under torchrun);
           # log in $OUT/logs/NAME.log, metrics and config copied to $OUT/NAME_metrics.jsonl and NAME_config.json.
           # PORT overrides torchrun's port (default 29500 + the first GPU's index); RESERVE: seconds kept back (20).
  local gpus=$1 name=$2 launch; shift 2
  local n=$(( $(tr -cd , <<< "$gpus" | wc -c) + 1 )) limit=$(( $(left) - ${RESERVE:-20} ))
  [ "$limit" -gt 30 ] || { echo "$name not started: $(left) s left"; return 1; }
  launch=${LAUNCH:-python3 -m sinklab.cli}  # LAUNCH: another entry point to sinklab's CLI (one GPU)
  [ "$n" -gt 1 ] && launch="torchrun --nnodes 1 --nproc_per_node $n --master_port ${PORT:-$((29500 + ${gpus%%,*}))} -m sinklab.cli"
  CUDA_VISIBLE_DEVICES=$gpus timeout "$limit" $launch train "$@" train.out="runs/$name" >> "$OUT/logs/$name.log" 2>&1
  local rc=$?
  cp "runs/$name/metrics.jsonl" "$OUT/${name}_metrics.jsonl" 2>/dev/null
  cp "runs/$name/config.json" "$OUT/${name}_config.json" 2>/dev/null
  echo "$name: exit $rc at $(( $(date +%s) - t0 )) s; last row: $(tail -n 1 "runs/$name/metrics.jsonl" 2>/dev/null | cut -c1-160)"
  return $rc
}

heads() {  # NAME GPU [N]: per-head tables of runs/NAME/ckpt on N held-out windows and on document starts
  local p
  for p in windows doc-starts; do
    [ "$(left)" -gt 45 ] || { echo "heads of $1 on $p not run: $(left) s left"; break; }
    CUDA_VISIBLE_DEVICES=$2 timeout 40 python3 scripts/sink_heads.py "runs/$1/ckpt" --data "$DATA" --probe $p --n "${3:-64}" \
      --out "$OUT/${1}_heads_$p.json" > "$OUT/logs/${1}_heads_$p.log" 2>&1
  done
}

step_times() {  # GPU FILE ARGS...: `python benchmarks/train_step.py ARGS` on GPU; rows appended to $OUT/FILE.jsonl with
                # this host's name and the process (gpuN), so each row is read against the softmax row of its process
  local gpu=$1 file=$2 raw; shift 2
  raw=$(mktemp)
  CUDA_VISIBLE_DEVICES=$gpu timeout $(( $(left) - 10 )) python3 benchmarks/train_step.py "$@" --out "$raw" \
    >> "$OUT/logs/${file}_gpu$gpu.log" 2>&1
  python3 - "$raw" "$(hostname -s)" "gpu$gpu" >> "$OUT/$file.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if line.strip():
        print(json.dumps({**json.loads(line), "host": sys.argv[2], "process": sys.argv[3]}))
PY
  rm -f "$raw"
}

show() {  # FILE KEY...: one line per JSON row of FILE with these keys
  python3 - "$@" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if line.strip():
        r = json.loads(line)
        print(" ".join(f"{k}={r[k]}" for k in sys.argv[2:] + ["error"] if k in r)[:300])
PY
}
