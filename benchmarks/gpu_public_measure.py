"""The public call on fresh models, on one GPU: `sinklab.measure(model, input_ids=ids, device="cuda",
dtype="bfloat16")` on random-initialised bf16 builds of SmolLM2-135M's and Llama-3-8B's shapes.

For every build and T it records:
- whether the call was refused (it must not be);
- the time of the first call on the fresh model (load-time checks included), and of later calls (the
  checks' verdict is remembered for the model), each against a plain SDPA forward of the same ids;
- the largest |mean alpha| difference over every (layer, head, k) row against SINKLAB_FUSED=0, the
  exact row-block path, on the first sample (fused and exact measured on the same model).

    python benchmarks/gpu_public_measure.py --builds 20 --builds-8b 3 --out rows.jsonl [--deadline-s 500]
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _common import emit, error_text  # noqa: E402
from measure_long_context import SHAPES  # noqa: E402

import sinklab  # noqa: E402
from sinklab.errors import SinklabError  # noqa: E402

PLAN = {"135m": [(1024, 8), (8192, 4), (32768, 1)], "8b": [(1024, 8), (8192, 4), (32768, 1)]}
GAP_MAX_T = 8192  # the exact row-block reference is slow beyond this; the fused kernels do not change with T


def build(shape: str, seed: int):
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(seed)
    with torch.device("cuda"):
        return AutoModelForCausalLM.from_config(LlamaConfig(**SHAPES[shape], max_position_embeddings=32768),
                                                dtype=torch.bfloat16).eval()


def seconds(fn) -> float:
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def public(model, ids):
    return sinklab.measure(model, input_ids=ids, device="cuda", dtype="bfloat16", progress=False)


def plain_seconds(model, ids) -> float:
    model.set_attn_implementation("sdpa")  # the model as its user runs it; measure() switches it back
    with torch.inference_mode():
        model.base_model(input_ids=ids, use_cache=False)
        return statistics.median(seconds(lambda: model.base_model(input_ids=ids, use_cache=False)) for _ in range(3))


def alpha_gap(model, ids) -> float:
    """max |mean alpha| over (layer, head, k) rows: fused against SINKLAB_FUSED=0, on one sample."""
    fused = public(model, ids[:1]).heads
    os.environ["SINKLAB_FUSED"] = "0"
    try:
        exact = public(model, ids[:1]).heads
    finally:
        os.environ.pop("SINKLAB_FUSED")
    return max(abs(a["mean_alpha"] - b["mean_alpha"]) for a, b in zip(fused, exact))


def one(model, shape, seed, T, n):
    ids = torch.randint(0, SHAPES[shape]["vocab_size"], (n, T), device="cuda")
    plain = plain_seconds(model, ids)
    row = dict(shape=shape, build_seed=seed, T=T, n=n, plain_s=round(plain, 4))
    try:
        first = seconds(lambda: public(model, ids))
        later = statistics.median(seconds(lambda: public(model, ids)) for _ in range(2))
        gap = alpha_gap(model, ids) if T <= GAP_MAX_T else None
    except SinklabError as e:
        return {**row, "refused": str(e)}
    return {**row, "refused": None, "first_call_s": round(first, 4), "later_call_s": round(later, 4),
            "first_call_ratio": round(first / plain, 3), "later_call_ratio": round(later / plain, 3),
            "max_alpha_diff_vs_exact": gap}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="135m,8b")
    ap.add_argument("--builds", type=int, default=20, help="fresh builds of the 135M shape")
    ap.add_argument("--builds-8b", type=int, default=3, help="fresh builds of the 8B shape")
    ap.add_argument("--deadline-s", type=float, default=1e9, help="stop starting builds after this many seconds")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    t0 = time.perf_counter()
    emit({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
          "cudnn": torch.backends.cudnn.version(), "SINKLAB_CUDNN": os.environ.get("SINKLAB_CUDNN", "")}, a.out)
    public(build("135m", 999), torch.randint(0, 100, (1, 64), device="cuda"))  # Triton's kernels compiled once
    for shape in a.shapes.split(","):
        for seed in range(a.builds if shape == "135m" else a.builds_8b):
            if time.perf_counter() - t0 > a.deadline_s:
                emit({"stopped": f"deadline at {shape} build {seed}"}, a.out)
                return
            model = build(shape, seed)
            for T, n in PLAN[shape]:
                try:
                    emit(one(model, shape, seed, T, n), a.out)
                except Exception as e:  # a crash is a result too: recorded, and the next build goes on
                    emit(dict(shape=shape, build_seed=seed, T=T, n=n, error=error_text(e)), a.out)
            del model
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
