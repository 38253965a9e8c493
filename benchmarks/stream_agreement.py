"""Perplexity of sinklab's sink cache against StreamingLLM's procedure (tests/stream_reference.py) on the
same tokens of one stream: SmolLM2-135M, the start of Austen, 4 + 252 and 0 + 256.

    python benchmarks/stream_agreement.py --tokens 2048 [--device cpu] [--out FILE.jsonl]
"""
import argparse
import lzma
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    from stream_reference import reference_nll

    from sinklab.load import load_model
    from sinklab.stream import stream_nll

    loaded = load_model(device=a.device)
    text = lzma.open(Path(__file__).resolve().parents[2] / "shared" / "data" / "austen.txt.xz", "rt").read()
    ids = torch.tensor([loaded.tokenizer.encode(text[:200_000])[: a.tokens]], device=a.device)
    for n_sink, window in ((4, 252), (0, 256)):
        t0 = time.perf_counter()
        ref = reference_nll(loaded.model, ids, n_sink, window)
        print(f"reference {n_sink} + {window}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        ours = stream_nll(loaded.model, ids, n_sink, window)[0][0].cpu()
        print(f"sinklab {n_sink} + {window}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        diff = ours - ref
        row = {"model": loaded.name, "tokens": ids.shape[1], "cache": f"{n_sink} + {window}",
               "ppl_reference": round(math.exp(ref.mean().item()), 4), "ppl_sinklab": round(math.exp(ours.mean().item()), 4),
               "relative_difference": float(f"{math.exp(ours.mean().item()) / math.exp(ref.mean().item()) - 1:.3e}"),
               "max_abs_nll_difference": float(f"{diff.abs().max().item():.3e}"),
               "mean_nll_difference": float(f"{diff.mean().item():.3e}"),
               "ppl_past_cache_reference": round(math.exp(ref[256:].mean().item()), 4),
               "ppl_past_cache_sinklab": round(math.exp(ours[256:].mean().item()), 4)}
        emit(row, a.out)


if __name__ == "__main__":
    main()
