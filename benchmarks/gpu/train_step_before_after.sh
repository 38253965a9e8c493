#!/usr/bin/env bash
# One GPU (H100 or H200). The softmax training step (paper-60m shape, T = 2048, batch 32,
# bf16, torch.compile) timed on the tree before the trainer and attention were restructured (commit
# a48ee81) and on this one, alternately (before, after, before, after) on one machine, so drift shows.
#   git archive a48ee81 | tar -x -C .carry/before_house    # here, then carry .carry/before_house
#   COMMIT=$(git rev-parse --short HEAD) OUT=dir bash benchmarks/gpu/train_step_before_after.sh
#   (writes train_step_before_after.jsonl; COMMIT labels this tree, whose copy on the GPU host may have no git)
export PYTHONUNBUFFERED=1 SINKLAB_NO_PROGRESS=1
OUT=$(realpath -m "${OUT:-results/train_step}"); mkdir -p "$OUT"; BEFORE=${BEFORE:-.carry/before_house}; HERE=$PWD
[ -f "$BEFORE/benchmarks/train_step.py" ] || { echo "no tree at $BEFORE (see the header)"; exit 2; }
for repeat in 1 2; do
  for tree in before after; do
    dir=$HERE; [ $tree = before ] && dir=$(realpath "$BEFORE")
    rm -f /tmp/step_$tree.jsonl  # a failed run must not leave the previous row to be recorded again
    (cd "$dir" && PYTHONPATH=$dir timeout ${T_STEP:-150} python3 benchmarks/train_step.py --variants softmax \
      --steps ${STEPS_TIMED:-40} --out /tmp/step_$tree.jsonl 2>&1 | tail -n 1)
    python3 -c "import json,sys; r=json.loads(open('/tmp/step_$tree.jsonl').readlines()[-1]); r.update(tree='$tree', repeat=$repeat, commit='$( [ $tree = before ] && echo a48ee81 || echo "${COMMIT:-this tree}")'); print(json.dumps(r))" >> "$OUT/train_step_before_after.jsonl"
  done
done
python3 - "$OUT/train_step_before_after.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
mfu = {t: statistics.mean(r["mfu"] for r in rows if r["tree"] == t and "mfu" in r) for t in ("before", "after")}
print(json.dumps({"mfu_before": round(mfu["before"], 4), "mfu_after": round(mfu["after"], 4),
                  "after_over_before": round(mfu["after"] / mfu["before"], 4)}))
PY
