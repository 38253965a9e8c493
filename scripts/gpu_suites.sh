#!/usr/bin/env bash
# The quick-60m reproduction runs behind EXPERIMENTS.md (issue 5), on one 4x H200 host:
#   OUT=results bash scripts/gpu_suites.sh
# One run per GPU through `sinklab sweep`; a time guard stops it before the device limit, and the
# runs' metrics come back as one tarball (extract it into runs/sweeps to rebuild the scorecard).
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD SINKLAB_NO_PROGRESS=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
OUT=${OUT:-results}; mkdir -p "$OUT"
SITE=$(python3 -c "import site;print(site.getsitepackages()[0])")
python3 -m sinklab.cli data prepare "$SITE/**/*.py" --out /tmp/py8k --tokenizer bpe:8192 --max-chars 250000000 2>&1 | tail -1
SET="train.steps=${STEPS:-1000} train.measure_every=200 train.eval_every=200 train.ckpt_every=200"
ONLY=${ONLY:-baseline,wd_0.5,wd_2,pos_nope,pos_alibi,sink_token,k_bias,sigmoid,scaled_softmax_0.2,fixed_pos1,fixed_pos2,window_32}
timeout ${BUDGET_S:-500} python3 -m sinklab.cli sweep weight_decay,positional,attention_bias,attention_op,fixed_token,sliding_window \
  --preset quick-60m --data /tmp/py8k --out runs/sweeps --only "$ONLY" --set $SET 2>&1 | tail -20
tar czf "$OUT/sweep_runs.tgz" runs/sweeps/quick-60m/*/metrics.jsonl runs/sweeps/quick-60m/*/ckpt/sinklab.json runs/sweeps/quick-60m/*/train.log 2>/dev/null
python3 -m sinklab.cli scorecard weight_decay,positional,attention_bias,attention_op,fixed_token,sliding_window \
  --preset quick-60m --out runs/sweeps --set $SET > "$OUT/scorecard.md" 2>&1; tail -30 "$OUT/scorecard.md"
