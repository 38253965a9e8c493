#!/usr/bin/env bash
# The GPU runs behind EXPERIMENTS.md (issue 4) and the re-benchmark in BENCHMARKS.md, on one 4x H200 host.
#   OUT=results bash scripts/gpu_emergence.sh
# GPU0: quick-60m softmax; GPU1: quick-60m sigmoid without normalisation (otherwise identical);
# GPU2+3: quick-60m softmax on 2 GPUs with torchrun (same global batch); GPU2 first re-benchmarks steps.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD SINKLAB_NO_PROGRESS=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
OUT=${OUT:-results}; mkdir -p "$OUT" /tmp/sl
SITE=$(python3 -c "import site;print(site.getsitepackages()[0])")
STEPS=${STEPS:-2400}; SIG_STEPS=${SIG_STEPS:-1300}; DDP_STEPS=${DDP_STEPS:-1000}
(CUDA_VISIBLE_DEVICES=2 python3 benchmarks/train_step.py --variants softmax,nope --steps 10 --out "$OUT/rebench.jsonl";
 CUDA_VISIBLE_DEVICES=2 python3 benchmarks/train_step.py --vocab 256 --variants softmax --steps 10 --out "$OUT/rebench.jsonl") > /tmp/sl/rebench.log 2>&1 &
RB=$!
t0=$(date +%s); DEADLINE=$((t0 + ${BUDGET_S:-550}))  # stop the runs in time to copy their metrics back
left() { echo $((DEADLINE - $(date +%s))); }
python3 -m sinklab.cli data prepare "$SITE/**/*.py" --out /tmp/sl/py8k --tokenizer bpe:8192 --max-chars 250000000 2>&1 | tail -1
echo "data prepared in $(( $(date +%s) - t0 )) s"; cp /tmp/sl/py8k/manifest.json "$OUT/manifest.json"
COMMON="train.data=/tmp/sl/py8k train.measure_every=200 train.eval_every=200 train.ckpt_every=100000"
CUDA_VISIBLE_DEVICES=0 timeout $(left) python3 -m sinklab.cli train quick-60m $COMMON train.steps=$STEPS train.out=/tmp/sl/softmax > /tmp/sl/softmax.log 2>&1 &
CUDA_VISIBLE_DEVICES=1 timeout $(left) python3 -m sinklab.cli train quick-60m $COMMON train.steps=$SIG_STEPS model.score=sigmoid train.micro_batch=8 train.out=/tmp/sl/sigmoid > /tmp/sl/sigmoid.log 2>&1 &
wait $RB
CUDA_VISIBLE_DEVICES=2,3 timeout $(left) torchrun --standalone --nproc_per_node 2 -m sinklab.cli train quick-60m $COMMON train.steps=$DDP_STEPS train.micro_batch=16 train.out=/tmp/sl/ddp > /tmp/sl/ddp.log 2>&1 &
wait
for r in softmax sigmoid ddp; do cp /tmp/sl/$r/metrics.jsonl "$OUT/${r}_metrics.jsonl" 2>/dev/null; done
tail -n 4 /tmp/sl/*.log > "$OUT/logs.txt" 2>&1
