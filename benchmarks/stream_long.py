"""One long stream through the sink cache: perplexity per block of tokens and GPU memory per block.

    python benchmarks/stream_long.py --device cuda --tokens 100000 --ids .carry/stream_ids.pt --out FILE.jsonl
    python benchmarks/stream_long.py --save-ids .carry/stream_ids.pt --tokens 100000   # tokenise the corpora here
    python benchmarks/stream_long.py --model tiny --reference --ids .carry/stream_ids.pt   # CPU, beside the reference

The token ids are the public-domain corpora in ../shared/data (Austen, about 1M tokens, then the two
Bibles, repeated as needed) through SmolLM2's tokenizer. The model is SmolLM2-135M when --model default, else a random-
initialised model of its shape (benchmarks/stream_speed.py), whose perplexity is near its vocabulary size;
--model tiny is a 2-layer random Llama with the same vocabulary, fast enough on a CPU to run StreamingLLM's
procedure (tests/stream_reference.py) over the whole stream beside it (--reference).
"""
import argparse
import json
import lzma
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
CORPORA = ["austen.txt.xz", "bible_kjv.txt.xz", "bible_web.txt.xz"]


def corpus_ids(tokens: int) -> torch.Tensor:
    from sinklab.load import load_model

    tokenizer = load_model().tokenizer
    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    ids: list[int] = []
    while len(ids) < tokens:
        for name in CORPORA:
            ids += tokenizer.encode(lzma.open(data / name, "rt", encoding="utf-8").read())
            if len(ids) >= tokens:
                break
    return torch.tensor(ids[:tokens], dtype=torch.int32)


def run(model, ids, block: int, n_sink: int, window: int, decode: str, out: list, path: str | None):
    from sinklab.stream import Streamer, nll_rows

    device = next(model.parameters()).device
    streamer = Streamer(model, n_sink, window, decode=decode)
    ids = ids.to(device).long().view(1, -1)
    nll = torch.empty(ids.shape[1] - 1, dtype=torch.float64, device=device)
    t0 = time.perf_counter()
    for start in range(0, ids.shape[1] - 1, block):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        end = min(start + block, ids.shape[1] - 1)
        for t in range(start, end):
            nll[t] = nll_rows(streamer.step(ids[:, t:t + 1]), ids[:, t + 1])[0]
        row = {"tokens": f"{start + 1}-{end}", "ppl": round(math.exp(nll[start:end].mean().item()), 4),
               "elapsed_s": round(time.perf_counter() - t0, 1), "decode": streamer.decode}
        if device.type == "cuda":
            row["peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            row["allocated_mib"] = round(torch.cuda.memory_allocated() / 2**20, 1)
        _emit(row, path)
        out.append(row)
    return nll


def tiny_model(device: str):
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192,
                      initializer_range=0.1)
    return AutoModelForCausalLM.from_config(cfg).to(device).eval()


def compare_with_reference(model, ids, nll, block: int, path: str | None) -> None:
    from stream_reference import reference_nll

    device = next(model.parameters()).device
    ref = reference_nll(model, ids.to(device).long().view(1, -1), 4, 252).to(device)
    for start in range(0, ref.numel(), block):
        end = min(start + block, ref.numel())
        diff = (nll[start:end] - ref[start:end]).abs()
        _emit({"tokens": f"{start + 1}-{end}", "ppl_reference": round(math.exp(ref[start:end].mean().item()), 4),
               "ppl_sinklab": round(math.exp(nll[start:end].mean().item()), 4),
               "max_abs_nll_difference": float(f"{diff.max().item():.3e}")}, path)


def _emit(row: dict, path: str | None) -> None:
    print(json.dumps(row), flush=True)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--model", default="smollm2-shape")
    ap.add_argument("--tokens", type=int, default=100_000)
    ap.add_argument("--block", type=int, default=10_000)
    ap.add_argument("--decode", default="auto")
    ap.add_argument("--ids", default=None, help="a .pt file of token ids (from --save-ids)")
    ap.add_argument("--save-ids", default=None, help="tokenise the corpora into this .pt file and stop")
    ap.add_argument("--out", default=None)
    ap.add_argument("--reference", action="store_true", help="also run StreamingLLM's procedure and compare per block")
    a = ap.parse_args()
    if a.save_ids:
        Path(a.save_ids).parent.mkdir(parents=True, exist_ok=True)
        torch.save(corpus_ids(a.tokens), a.save_ids)
        return
    ids = torch.load(a.ids) if a.ids else corpus_ids(a.tokens)
    ids = ids[: a.tokens]
    if a.model == "default":
        from sinklab.load import load_model

        model = load_model(device=a.device, dtype=a.dtype).model
    elif a.model == "tiny":
        model = tiny_model(a.device)
    else:
        from stream_speed import smollm2_shape

        model = smollm2_shape(a.device, getattr(torch, a.dtype))
    rows: list[dict] = []
    nll = run(model, ids, a.block, 4, 252, a.decode, rows, a.out)
    if a.reference:
        compare_with_reference(model, ids, nll, a.block, a.out)
    ppls = [r["ppl"] for r in rows if r["tokens"].split("-")[1] == str(int(r["tokens"].split("-")[0]) + a.block - 1)]
    summary = {"summary": True, "model": a.model, "dtype": a.dtype, "tokens": len(ids), "cache": "4 + 252",
               "block_ppl_max_over_min": round(max(ppls) / min(ppls), 4) if ppls else None,
               "peak_mib_per_block": sorted({r.get("peak_mib") for r in rows} - {None})}
    _emit(summary, a.out)


if __name__ == "__main__":
    main()
