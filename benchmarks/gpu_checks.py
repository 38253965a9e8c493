"""GPU-only correctness: the FlexAttention and SDPA fast paths equal the dense reference path.

    python benchmarks/gpu_checks.py
Each variant runs once on the GPU (fast path) and once on the CPU (dense path), float32.
"""
import json

import torch

from sinklab.config import preset
from sinklab.model.decoder import SinkLM

CHECKS = {"alibi": dict(position="alibi"), "sink_logit": dict(sink_logit=True), "off_by_one": dict(score="off_by_one"),
          "window": dict(window=48), "prefix_lm": dict(prefix_len=40), "kv_bias": dict(attn_bias="kv"),
          "sink_token_window": dict(sink_token=True, window=48), "scaled_softmax_window": dict(score="scaled_softmax", score_scale=0.5, window=64)}

for name, change in CHECKS.items():
    torch.manual_seed(0)
    cpu = SinkLM(preset("tiny", max_seq_len=512, **change)).eval()
    with torch.no_grad():
        for p in cpu.parameters():
            if p.dim() == 1 and p.abs().sum() == 0:
                p.normal_()  # sink logits and biases start at zero: make them matter
    gpu = SinkLM(cpu.cfg).cuda().eval()
    gpu.load_state_dict(cpu.state_dict())
    ids = torch.randint(0, 256, (2, 256))
    with torch.no_grad():
        ref = cpu(ids)
        got = gpu(ids.cuda()).cpu()
    print(json.dumps({"check": name, "max_abs_diff": float((ref - got).abs().max()), "ok": bool(torch.allclose(ref, got, atol=2e-4))}), flush=True)
