#!/usr/bin/env bash
# One GPU (H100 or H200). The fused measurement path: its GPU checks, its parts alone with
# a profile of one 135M-shape measurement at T = 32768, the long-context benchmark against a plain SDPA
# forward (both column-sum accumulators side by side), and a model larger than a 2 GiB GPU share
# measured through --device-map auto beside the same model on the GPU alone. Rows under $OUT.
#   STEPS="checks kernels long devmap" bash benchmarks/gpu/measure.sh
# The four steps' time limits add up to about 11.5 minutes; STEPS runs a subset (BENCHMARKS.md §2).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD SINKLAB_NO_PROGRESS=1 HF_HUB_OFFLINE=1
OUT=${OUT:-results/gpu_measure}; mkdir -p "$OUT"; STEPS=${STEPS:-"checks kernels long devmap"}; t0=$(date +%s)
has() { [[ " $STEPS " == *" $1 "* ]]; }
stamp() { echo "== $1 at $(( $(date +%s) - t0 )) s"; }
python3 -c "import torch, transformers, triton; print(torch.__version__, transformers.__version__, triton.__version__)"
if has checks; then stamp checks
  timeout 150 python3 benchmarks/gpu_checks_measure.py --out "$OUT/measure_checks.jsonl" 2>&1 | tail -30
fi
if has kernels; then stamp kernels
  timeout 120 python3 benchmarks/measure_kernels.py --T 32768 --shapes 135m --profile 135m \
    --out "$OUT/measure_kernels.jsonl" 2>&1 | tail -75
fi
if has long; then stamp long
  timeout 270 python3 benchmarks/measure_long_context.py --column-acc 2d 1d --exact-T --eager-T \
    --out "$OUT/measure_long_context.jsonl" 2>&1 | tail -30
fi
has devmap || { stamp done; exit 0; }
stamp devmap
# device map: a ~1.7B Llama shape saved to disk, measured with the GPU limited to 2 GiB, and on the GPU alone
timeout 150 bash -c '
python3 - <<PY
import torch
from transformers import AutoModelForCausalLM, LlamaConfig
torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=8192, num_hidden_layers=24,
                  num_attention_heads=16, num_key_value_heads=4, max_position_embeddings=4096)
with torch.device("cuda"):
    m = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
with torch.no_grad():  # sharper attention than at initialisation, so alpha varies across heads
    for layer in m.model.layers:
        layer.self_attn.q_proj.weight.mul_(4)
        layer.self_attn.k_proj.weight.mul_(4)
m.save_pretrained("/tmp/llama1b7")
print("saved", sum(p.numel() for p in m.parameters()) / 1e9, "B params")
PY
for how in auto gpu; do
  opts="--device cuda"; [ $how = auto ] && opts="--device-map auto --max-memory 0=2GiB,cpu=100GiB"
  python3 -m sinklab.cli measure --model /tmp/llama1b7 $opts --dtype bfloat16 --probe random --T 1024 --n 8 --batch-size 8 \
    --no-figures --out /tmp/dm_$how 2>&1 | grep -E "^Sink_1|^load|error" | sed "s|^|[$opts] |"
done
python3 - <<PY
import csv, json
rows = {h: list(csv.DictReader(open(f"/tmp/dm_{h}/heads.csv"))) for h in ("auto", "gpu")}
diff = max(abs(float(a["mean_alpha"]) - float(b["mean_alpha"])) for a, b in zip(rows["auto"], rows["gpu"]))
s = {h: json.load(open(f"/tmp/dm_{h}/summary.json")) for h in ("auto", "gpu")}
placed = sorted(set(s["auto"]["model_info"].get("device_map", {}).values()))
print(json.dumps({"check": "device_map auto (GPU 0 limited to 2 GiB) vs the GPU alone", "devices_used": placed,
                  "sink_1": [s[h]["sink"]["1"] for h in ("auto", "gpu")],
                  "mean_alpha_1": [s[h]["mean_alpha_1"] for h in ("auto", "gpu")],
                  "max_abs_head_alpha_diff": diff, "rows": len(rows["gpu"])}))
PY
python3 -m sinklab.cli measure --model /tmp/llama1b7 --device-map auto --max-memory 3=1GiB --dtype bfloat16; echo "exit $?"
python3 -m sinklab.cli measure --model /tmp/llama1b7 --device cuda:5; echo "exit $?"
' 2>&1 | tee "$OUT/device_map.txt"
stamp done
