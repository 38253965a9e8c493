#!/usr/bin/env bash
# A CPU-scale preview of issue 7's question: with a fixed first token (the recipe that grows a sink
# on 2 cores in minutes, EXPERIMENTS.md section 7), where does the sink go under MoBA and NSA, with and
# without forcing the first block?   DATA=pybytes bash scripts/cpu_sparse.sh
# SELECT=token (default): every token gates, as the papers do; SELECT=block: once per query block.
set -eu
DATA=${DATA:?token shards, e.g. from: sinklab data prepare "/usr/lib/python3*/*.py" --out pybytes}
OUT=${OUT:-runs/cpu_sparse}; STEPS=${STEPS:-1000}; SELECT=${SELECT:-token}
BASE="train.data=$DATA model.n_layers=4 model.d_model=128 model.d_ffn=512 model.n_heads=8 train.lr=1e-2
      train.fixed_token=[0,0] train.steps=$STEPS train.seq_len=128 train.measure_every=250 train.eval_every=250
      train.measure_T=128 train.ckpt_every=100000"
for run in "dense" \
           "moba model.sparse=moba model.sparse_select=$SELECT model.sparse_block=16 model.sparse_topk=2" \
           "moba_forced model.sparse=moba model.sparse_select=$SELECT model.sparse_block=16 model.sparse_topk=2 model.force_first_block=true" \
           "nsa model.sparse=nsa model.sparse_select=$SELECT model.sparse_block=16 model.sparse_topk=2 model.sparse_window=32" \
           "nsa_forced model.sparse=nsa model.sparse_select=$SELECT model.sparse_block=16 model.sparse_topk=2 model.sparse_window=32 model.force_first_block=true"; do
  set -- $run; name=$1; shift
  sinklab train tiny $BASE "$@" train.out=$OUT/$name
done
