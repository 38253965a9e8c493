"""GPU-only correctness: the FlexAttention and SDPA fast paths equal the dense reference path.

    python benchmarks/gpu_checks.py [--out checks.jsonl]
Each variant runs on the GPU (fast path: SDPA, FlexAttention with block masks and distance
biases) and on the CPU (dense path), float32: logits and the gradient
of every parameter must agree.
"""
import argparse

import torch
from _common import emit, error_text

from sinklab.config import preset
from sinklab.model import attention, masks, variants
from sinklab.model.decoder import SinkLM

# every catalogue entry at T = 256, blocks of 32 (2 chosen); then the sparse patterns again with
# blocks of 128, the FlexAttention tile, which take the block-sparse flex paths
CHECKS = {**variants.catalogue(block=32, topk=2),
          **{k.replace("moba", "moba_128", 1).replace("nsa", "nsa_128", 1): v
             for k, v in variants.sparse(block=128, topk=1).items() if k.startswith(("moba", "nsa"))}}
# DSA's selection comes from the bf16 Triton indexer on the GPU (dsa_indexer_kernel: 99.95 % the same top-k as the
# float32 formula); dsa_torch_indexer takes the PyTorch indexer in float32 instead. torch.topk breaks the ties among
# relu scores of 0 differently on the two devices, so dsa_ties_by_position also breaks them by position on both
CHECKS["dsa_torch_indexer"] = CHECKS["dsa_ties_by_position"] = CHECKS["dsa"]


def dsa_indexer_kernel() -> dict:
    """The Triton indexer against the PyTorch formula on the same bf16 inputs (T not a multiple of
    the tile): the -inf pattern, the scores to bf16 rounding, and the top-256 choice."""
    from sinklab.model.kernels import dsa_index_scores
    torch.manual_seed(0)
    B, T, H, D = 2, 1000, 4, 32
    q = torch.randn(B, T, H, D, device="cuda").bfloat16()
    k = torch.randn(B, T, D, device="cuda").bfloat16()
    w = torch.randn(B, T, H, device="cuda").bfloat16()
    got = dsa_index_scores(q, k, w).float()
    want = (torch.relu(torch.einsum("bihd,bjd->bihj", q.float(), k.float())) * w.float()[..., None]).sum(2)
    future = ~torch.ones(T, T, dtype=torch.bool, device="cuda").tril()
    want = want.masked_fill(future, float("-inf"))
    past = ~future
    err = float(((got - want).abs()[:, past] / want.abs()[:, past].clamp_min(1.0)).max())
    chosen_got, chosen_want = masks.topk_tokens(got, 256), masks.topk_tokens(want, 256)
    same_choice = float((chosen_got & chosen_want).sum() / chosen_want.sum())  # share of the choice kept
    inf_ok = bool(torch.equal(torch.isinf(got), torch.isinf(want)))
    return {"check": "dsa_indexer_kernel", "max_rel_score_diff": err, "same_topk_share": same_choice,
            "ok": bool(inf_ok and err < 1e-2 and same_choice > 0.99)}


def grads(model, ids):
    model.zero_grad()
    model(ids[:, :-1], ids[:, 1:]).backward()
    return {n: p.grad.detach().cpu() for n, p in model.named_parameters() if p.grad is not None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--shard", default="0/1", help="K/N: run every N-th check from the K-th (compiles in parallel)")
    a = ap.parse_args()
    shard, shards = (int(x) for x in a.shard.split("/"))
    torch.backends.cuda.matmul.allow_tf32 = False
    if shard == 0 and (not a.only or "dsa_indexer_kernel" in a.only.split(",")):
        try:
            emit(dsa_indexer_kernel(), a.out)
        except Exception as e:
            emit({"check": "dsa_indexer_kernel", "ok": False, "error": error_text(e)}, a.out)
    for i, (name, change) in enumerate(CHECKS.items()):
        if i % shards != shard or (a.only and name not in a.only.split(",")):
            continue
        attention.DSA_TRITON_INDEXER = name not in ("dsa_torch_indexer", "dsa_ties_by_position")
        masks.TIES_BY_POSITION = name == "dsa_ties_by_position"
        torch._dynamo.reset()  # each check compiles FlexAttention afresh (no recompile limit, no eager fallback)
        try:
            torch.manual_seed(0)
            cpu = SinkLM(preset("tiny", max_seq_len=512, **change))
            with torch.no_grad():
                for n, p in cpu.named_parameters():
                    if (p.dim() == 1 and p.abs().sum() == 0) or "relative_bias" in n:
                        p.normal_()  # sink logits, biases and the relative table start at zero: make them matter
            gpu = SinkLM(cpu.cfg).cuda()
            gpu.load_state_dict(cpu.state_dict())
            ids = torch.randint(0, 256, (2, 257))
            with torch.no_grad():
                ref, got = cpu(ids[:, :-1]), gpu(ids[:, :-1].cuda()).cpu()
            g_ref, g_got = grads(cpu, ids), grads(gpu, ids.cuda())
            grad_err = max(float((g_ref[n] - g_got[n]).abs().max() / g_ref[n].abs().max().clamp_min(1e-12))
                           for n in g_ref)
            logit_err = float((ref - got).abs().max())
            row = {"check": name, "max_abs_logit_diff": logit_err, "max_rel_grad_diff": grad_err,
                   "ok": bool(logit_err < 2e-4 and grad_err < 1e-3)}
        except Exception as e:
            row = {"check": name, "ok": False, "error": error_text(e)}
        emit(row, a.out)


if __name__ == "__main__":
    main()
