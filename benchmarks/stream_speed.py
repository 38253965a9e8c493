"""Streaming speed: tokens/s of one-token-a-step decoding past a 4 + 252 cache, in one process, for
sinklab's static sink cache (CUDA graph replay, torch.compile, eager), the DynamicCache-based sink cache
sinklab had before it (copied below), and StreamingLLM's procedure (tests/stream_reference.py).

    python benchmarks/stream_speed.py --device cuda --batch 1 8 32 --out benchmarks/results/stream_h200.jsonl

The model is a random-initialised LlamaConfig of SmolLM2-135M's shape (speed does not depend on the
weights); --model default loads the real SmolLM2 instead (CPU here).
"""
import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

SMOLLM2_SHAPE = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                     num_attention_heads=9, num_key_value_heads=3, head_dim=64, max_position_embeddings=8192,
                     rope_parameters={"rope_type": "default", "rope_theta": 100000.0}, tie_word_embeddings=True,
                     rms_norm_eps=1e-5)


def smollm2_shape(device: str, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(LlamaConfig(**SMOLLM2_SHAPE), dtype=dtype)
    return model.to(device).eval()


class PreviousDynamicSinkCache:
    """sinklab's sink cache before the ring buffer: a DynamicCache whose keys are cut with torch.cat and
    re-rotated by the evicted count after every step (kept verbatim in behaviour, for comparison)."""

    def __init__(self, n_sink: int, window: int, inv_freq: torch.Tensor):
        from transformers import DynamicCache

        self.cache, self.n_sink, self.window, self.inv_freq = DynamicCache(), n_sink, window, inv_freq

    def _rerotate(self, keys, shift):
        angles = shift * self.inv_freq.to(keys.device)
        cos = torch.cat([angles.cos(), angles.cos()]).to(keys.dtype)
        sin = torch.cat([angles.sin(), angles.sin()]).to(keys.dtype)
        half = keys.shape[-1] // 2
        return keys * cos + torch.cat([-keys[..., half:], keys[..., :half]], dim=-1) * sin

    def trim(self):
        for layer in self.cache.layers:
            extra = layer.keys.shape[-2] - self.n_sink - self.window
            if extra > 0:
                kept = self._rerotate(layer.keys[:, :, self.n_sink + extra:], -extra)
                layer.keys = torch.cat([layer.keys[:, :, :self.n_sink], kept], dim=-2)
                layer.values = torch.cat([layer.values[:, :, :self.n_sink], layer.values[:, :, self.n_sink + extra:]], -2)


def previous_step_fn(model, n_sink, window):
    from sinklab.stream import cache_kwarg

    inv_freq = model.model.rotary_emb.inv_freq.float()
    state, key = PreviousDynamicSinkCache(n_sink, window, inv_freq), cache_kwarg(model)

    def step(tokens):
        pos = torch.full_like(tokens, state.cache.get_seq_length())
        logits = model(input_ids=tokens, position_ids=pos, use_cache=True, **{key: state.cache}).logits[:, -1]
        state.trim()
        return logits
    return step


def reference_step_fn(model, n_sink, window):
    from stream_reference import StartRecentCache

    from sinklab.stream import cache_kwarg

    cache, key = StartRecentCache(model, n_sink, window), cache_kwarg(model)

    def step(tokens):
        pos = torch.full_like(tokens, cache.get_seq_length())
        logits = model(input_ids=tokens, position_ids=pos, use_cache=True, **{key: cache}).logits[:, -1]
        cache.evict()
        return logits
    return step


def step_fn(variant, model, n_sink, window):
    from sinklab.stream import Streamer

    if variant in ("graph", "compile", "eager"):
        return Streamer(model, n_sink, window, decode=variant).step
    return {"previous_dynamic": previous_step_fn, "reference": reference_step_fn}[variant](model, n_sink, window)


@torch.inference_mode()
def tokens_per_s(variant, model, batch, n_sink, window, warm, timed):
    """Fill the cache (and warm any graph) with `warm` tokens, then time `timed` more, per stream."""
    step = step_fn(variant, model, n_sink, window)
    device = next(model.parameters()).device
    ids = torch.randint(0, model.config.vocab_size, (batch, warm + timed), device=device)
    t_start = time.perf_counter()
    for t in range(warm):
        step(ids[:, t:t + 1])
    _sync(device)
    t0 = time.perf_counter()
    for t in range(warm, warm + timed):
        step(ids[:, t:t + 1])
    _sync(device)
    elapsed = time.perf_counter() - t0
    return {"variant": variant, "batch": batch, "tokens_per_s": round(batch * timed / elapsed, 1),
            "ms_per_step": round(1000 * elapsed / timed, 3), "timed_steps": timed, "warm_steps": warm,
            "warm_s": round(t0 - t_start, 1)}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    ap.add_argument("--model", default="smollm2-shape", help="smollm2-shape (random weights) or default (SmolLM2)")
    ap.add_argument("--batch", type=int, nargs="+", default=[1])
    ap.add_argument("--variants", default="graph,compile,eager,previous_dynamic,reference")
    ap.add_argument("--slow-variants-batch", type=int, default=1, help="largest batch for eager, previous, reference")
    ap.add_argument("--timed", type=int, default=512, help="timed steps for graph and compile (others: 64)")
    ap.add_argument("--warm", type=int, default=300, help="steps before timing (the cache holds 256)")
    ap.add_argument("--out", default=None, help="append one JSON line per measurement")
    a = ap.parse_args()
    dtype = getattr(torch, a.dtype)
    if a.model == "default":
        from sinklab.load import load_model

        model = load_model(device=a.device, dtype=a.dtype).model
    else:
        model = smollm2_shape(a.device, dtype)
    info = {"device": torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu", "dtype": a.dtype,
            "model": a.model, "cache": "4 + 252", "torch": torch.__version__}
    for variant in a.variants.split(","):
        for batch in a.batch:
            fast = variant in ("graph", "compile")
            if not fast and batch > a.slow_variants_batch or variant == "compile" and batch > 1:
                continue
            row = {**info, **tokens_per_s(variant, model, batch, 4, 252, a.warm, a.timed if fast else min(64, a.timed))}
            emit(row, a.out)


if __name__ == "__main__":
    main()
