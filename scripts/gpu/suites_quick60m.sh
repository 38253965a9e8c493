#!/usr/bin/env bash
# Machine kind: nvidia-h200-x4. Reproduces EXPERIMENTS.md §4, "The paper's findings at 1,000 quick-60m steps": the
# twelve runs of six suites through `sinklab sweep` (the baseline shared), spread over the GPUs, 1,000 steps each;
# then the scorecard (table, claims, plots, scorecard.html) from the runs' metrics.
# Recorded rows: experiments/results/sweeps/quick-60m/*/metrics.jsonl (the sigmoid run stopped at step 800).
#   OUT=dir bash scripts/gpu/suites_quick60m.sh     (about 9 minutes; the runs' metrics in $OUT/sweeps.tgz)
BUDGET=560; source "$(dirname "$0")/lib.sh"; need_gpus 4
prepare_py8k
SUITES=weight_decay,positional,attention_bias,attention_op,fixed_token,sliding_window
SET="train.steps=${STEPS:-1000} train.measure_every=200 train.eval_every=200 train.ckpt_every=200"
ONLY=${ONLY:-baseline,wd_0.5,wd_2,pos_nope,pos_alibi,sink_token,k_bias,sigmoid,scaled_softmax_0.2,fixed_pos1,fixed_pos2,window_32}
timeout $(( $(left) - 30 )) python3 -m sinklab.cli sweep $SUITES --preset quick-60m --data "$DATA" --out runs/sweeps \
  --only "$ONLY" --set $SET > "$OUT/logs/sweep.log" 2>&1
tar czf "$OUT/sweeps.tgz" runs/sweeps/quick-60m/*/metrics.jsonl runs/sweeps/quick-60m/*/ckpt/sinklab.json 2>/dev/null
python3 -m sinklab.cli scorecard $SUITES --preset quick-60m --out runs/sweeps --set $SET > "$OUT/scorecard.md" 2>&1
tail -n 30 "$OUT/scorecard.md"
