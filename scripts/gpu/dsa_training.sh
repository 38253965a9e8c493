#!/usr/bin/env bash
# Machine kind: nvidia-h200-x2. Reproduces BENCHMARKS.md §3b, "DSA: the Triton indexer trains like the PyTorch one":
# quick-60m with DSA (top-256 tokens), 300 steps, val loss every 50, through the Triton indexer (GPU 0) and, same
# seed and batches, through the PyTorch indexer (GPU 1).
# Recorded rows: experiments/results/dsa/triton_indexer_metrics.jsonl (the kernel) and
# experiments/results/dsa/rope_sdpa_metrics.jsonl (the PyTorch indexer, 200 steps).
#   OUT=dir bash scripts/gpu/dsa_training.sh     (about 5 minutes; writes $OUT/dsa_{triton,torch}_indexer_metrics.jsonl)
BUDGET=500; source "$(dirname "$0")/lib.sh"; need_gpus 2
prepare_py8k
DSA="quick-60m train.data=$DATA train.steps=300 train.eval_every=50 train.measure_every=100 train.ckpt_every=100000
     model.sparse=dsa model.dsa_tokens=256"
train 0 dsa_triton_indexer $DSA &
LAUNCH="python3 scripts/gpu/torch_indexer_cli.py" train 1 dsa_torch_indexer $DSA &
wait
python3 scripts/tables.py dsa_indexers --results "$OUT"
