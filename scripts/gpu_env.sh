# Sourced by the GPU call scripts: environment, output folder, a deadline and the py8k corpus.
#   BUDGET=<seconds> (the caller's default; BUDGET_S overrides it); then `prepare_py8k`.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD SINKLAB_NO_PROGRESS=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
OUT=${OUT:-results}; t0=$(date +%s); DEADLINE=$((t0 + ${BUDGET_S:-${BUDGET:-540}}))
left() { echo $((DEADLINE - $(date +%s))); }
SITE=$(python3 -c "import site;print(site.getsitepackages()[0])")
prepare_py8k() {  # the 8k BPE over the host's own site-packages (EXPERIMENTS.md section 1), ~35 s
  python3 -m sinklab.cli data prepare "$SITE/**/*.py" --out /tmp/py8k --tokenizer bpe:8192 --max-chars 250000000 --encoding-errors replace 2>&1 | tail -1
  echo "data prepared at $(( $(date +%s) - t0 )) s"
}
TWO="--nnodes 1 --nproc_per_node 2"  # two GPUs per job; give each job its own --master_port
heads() {  # RUN GPU [N]: per-head tables of runs/RUN/ckpt on N windows and on document starts (scripts/sink_heads.py)
  for p in windows doc-starts; do
    [ "$(left)" -gt 45 ] || break
    CUDA_VISIBLE_DEVICES=$2 timeout 40 python3 scripts/sink_heads.py runs/$1/ckpt --data /tmp/py8k --probe $p --n "${3:-64}" \
      --out "$OUT/r/${1}_heads_$p.json" > "$OUT/r/${1}_heads_$p.log" 2>&1
  done
}
