"""Use the sink: streaming with a sink-plus-window KV cache (StreamingLLM, Xiao et al. 2024).

The cache keeps the first `n_sink` tokens and the `window` most recent ones. Positions are
assigned inside the cache, so a RoPE model never sees a position beyond n_sink + window: when
tokens leave the window, the cached keys that stay are re-rotated by the same number of positions.
Built on transformers' public `DynamicCache` (a subclass; no library `forward` is patched).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from ..errors import SinklabError
from ..model.position import apply_rope

POLICIES = ("full", "window", "sink", "recompute")


@dataclass
class StreamModel:
    model: torch.nn.Module            # an HF causal LM
    inv_freq: torch.Tensor | None     # RoPE frequencies, None for models without positions to move
    max_context: int | None
    name: str


def prepare(loaded) -> StreamModel:
    """Check that the cache can re-position this model, and find its rotary frequencies."""
    model = loaded.model
    if loaded.kind == "sinklab":
        from ..model.checkpoint import to_hf_llama

        model = to_hf_llama(model).eval()  # LLaMA-shaped checkpoints only; others get a clear error
    cfg = model.config
    inv_freq, rope_type = None, None
    for module in model.modules():
        if hasattr(module, "inv_freq") and isinstance(module.inv_freq, torch.Tensor):
            inv_freq, rope_type = module.inv_freq.detach().float(), getattr(module, "rope_type", "default")
            break
    if inv_freq is not None and rope_type not in ("default", "llama3"):
        raise SinklabError(f"{loaded.name}: RoPE scaling {rope_type!r} changes with length; the sink cache cannot "
                           "re-position its keys (supported: default, llama3)")
    if inv_freq is None:
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Embedding) and any(s in name for s in ("wpe", "position", "pos_emb")):
                raise SinklabError(f"{loaded.name}: {cfg.model_type} uses learned absolute position embeddings "
                                   f"({name}); the sink cache cannot re-position its cached keys")
    from ..measure.capture import ATTN_IMPLEMENTATION

    if getattr(cfg, "_attn_implementation", None) == ATTN_IMPLEMENTATION:
        model.set_attn_implementation("sdpa")
    return StreamModel(model.eval(), inv_freq, getattr(cfg, "max_position_embeddings", None), loaded.name)


def _rerotate(keys: torch.Tensor, inv_freq: torch.Tensor, shift: int) -> torch.Tensor:
    """Rotate RoPE keys (B, H, L, d) by `shift` positions (negative = towards the start)."""
    rot = 2 * inv_freq.numel()
    angles = shift * inv_freq.to(keys.device)
    cos = torch.cat([angles.cos(), angles.cos()])
    sin = torch.cat([angles.sin(), angles.sin()])
    rotated = apply_rope(keys[..., :rot], cos.to(keys.dtype), sin.to(keys.dtype))
    return torch.cat([rotated, keys[..., rot:]], dim=-1) if rot < keys.shape[-1] else rotated


def make_cache(n_sink: int, window: int | None, inv_freq):
    from transformers import DynamicCache

    class SinkCache(DynamicCache):
        """DynamicCache that keeps `n_sink` first entries plus the last `window` after every step."""

        def trim(self) -> int:
            if window is None:
                return 0
            evicted = 0
            for layer in self.layers:
                L = layer.keys.shape[-2] if getattr(layer, "keys", None) is not None else 0
                extra = L - n_sink - window
                if extra <= 0:
                    continue
                k, v = layer.keys, layer.values
                kept_k = k[:, :, n_sink + extra:]
                if inv_freq is not None:
                    kept_k = _rerotate(kept_k, inv_freq, -extra)
                layer.keys = torch.cat([k[:, :, :n_sink], kept_k], dim=-2)
                layer.values = torch.cat([v[:, :, :n_sink], v[:, :, n_sink + extra:]], dim=-2)
                evicted = extra
            return evicted

    return SinkCache()


def check_sizes(sm: StreamModel, n_sink: int, window: int) -> None:
    if window < 1:
        raise SinklabError(f"--window must be at least 1 (got {window})")
    if n_sink < 0:
        raise SinklabError(f"--n-sink must be >= 0 (got {n_sink})")
    if sm.max_context and n_sink + window > sm.max_context:
        raise SinklabError(f"n_sink + window = {n_sink + window} is larger than the model's context of "
                           f"{sm.max_context} tokens")


def cache_kwarg(model, cache) -> dict:
    """transformers >= 5.2x names the argument `cache`; older releases `past_key_values`."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return {"cache": cache} if "cache" in params else {"past_key_values": cache}


@torch.inference_mode()
def step(sm: StreamModel, cache, tokens: torch.Tensor) -> torch.Tensor:
    """Feed one token per stream (B, 1); positions are assigned inside the cache. Returns (B, V) logits."""
    pos = torch.full_like(tokens, cache.get_seq_length())
    out = sm.model(input_ids=tokens, position_ids=pos, use_cache=True, **cache_kwarg(sm.model, cache))
    cache.trim()
    return out.logits[:, -1].float()


@torch.inference_mode()
def stream_logits(sm: StreamModel, ids: torch.Tensor, n_sink: int, window: int | None) -> torch.Tensor:
    """Token-by-token logits (B, T, V) with the sink cache (window None = unbounded)."""
    cache = make_cache(n_sink, window, sm.inv_freq)
    return torch.stack([step(sm, cache, ids[:, t:t + 1]) for t in range(ids.shape[1])], dim=1)


def _nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")


@torch.inference_mode()
def perplexity(sm: StreamModel, ids: torch.Tensor, cache_size: int = 256, n_sink: int = 4,
               policies=POLICIES, recompute_stride: int = 32, progress: bool = True) -> dict:
    """Per-token NLL over (streams, T) tokens for each policy, plus tokens/s.

    full: one causal pass (the unbounded cache), only where T fits the context;
    window: cache of the last `cache_size` tokens; sink: n_sink + (cache_size - n_sink);
    recompute: every `recompute_stride`-th token is scored from a fresh pass over its last cache_size tokens.
    """
    import os

    from tqdm.auto import tqdm

    progress = progress and os.environ.get("SINKLAB_NO_PROGRESS") != "1"
    B, T = ids.shape
    targets = ids[:, 1:]
    out = {"T": T, "streams": B, "cache_size": cache_size, "n_sink": n_sink, "nll": {}, "tokens_per_s": {},
           "tokens_per_s_by_position": {}}
    for policy in policies:
        t0 = time.perf_counter()
        if policy == "full":
            if sm.max_context and T > sm.max_context:
                continue
            nll = _nll(sm.model(input_ids=ids).logits[:, :-1], targets)
        elif policy in ("window", "sink"):
            sinks = 0 if policy == "window" else n_sink
            check_sizes(sm, sinks, cache_size - sinks)
            cache = make_cache(sinks, cache_size - sinks, sm.inv_freq)
            logits, rates, t_chunk = [], [], time.perf_counter()
            for t in tqdm(range(T - 1), desc=f"stream {policy}", leave=False, disable=not progress):
                logits.append(step(sm, cache, ids[:, t:t + 1]))
                if (t + 1) % 256 == 0:
                    now = time.perf_counter()
                    rates.append({"position": t + 1, "tokens_per_s": round(256 * B / (now - t_chunk), 1)})
                    t_chunk = now
            nll = _nll(torch.stack(logits, 1), targets)
            out["tokens_per_s_by_position"][policy] = rates
        else:  # sliding window with recomputation: the reference
            positions = list(range(cache_size, T - 1, recompute_stride))
            nll = torch.full((B, T - 1), float("nan"))
            for t in tqdm(positions, desc="recompute", leave=False, disable=not progress):
                window_ids = ids[:, t - cache_size + 1: t + 1]  # the last cache_size tokens up to t
                logits = sm.model(input_ids=window_ids).logits[:, -1]  # predicts ids[t + 1]
                nll[:, t] = torch.nn.functional.cross_entropy(logits.float(), ids[:, t + 1], reduction="none")
        elapsed = time.perf_counter() - t0
        scored = int(torch.isfinite(nll).sum())
        out["nll"][policy] = nll
        out["tokens_per_s"][policy] = round(scored / elapsed, 2)
    return out


def summarise(result: dict, stride: int) -> list[dict]:
    """Perplexity per policy over all tokens past the cache, and over the recompute positions only."""
    cs = result["cache_size"]
    rows = []
    ref = result["nll"].get("recompute")
    mask = torch.isfinite(ref) if ref is not None else None
    for policy, nll in result["nll"].items():
        tail = nll[:, cs:]
        row = {"policy": policy, "ppl_past_cache": round(math.exp(tail[torch.isfinite(tail)].mean().item()), 3),
               "ppl_first_cache": round(math.exp(nll[:, :cs][torch.isfinite(nll[:, :cs])].mean().item()), 3)
               if policy != "recompute" else None,
               "tokens_per_s": result["tokens_per_s"][policy]}
        if mask is not None:
            row["ppl_on_recompute_positions"] = round(math.exp(nll[mask].mean().item()), 3)
        rows.append(row)
    return rows


@torch.inference_mode()
def generate(sm: StreamModel, prompt_ids: torch.Tensor, max_new_tokens: int = 100, n_sink: int = 4,
             window: int = 1020, temperature: float = 0.0, seed: int = 0) -> torch.Tensor:
    """Generate with a bounded sink cache; memory stays constant however long the output."""
    check_sizes(sm, n_sink, window)
    gen = torch.Generator().manual_seed(seed)
    cache = make_cache(n_sink, window, sm.inv_freq)
    logits = None
    for t in range(prompt_ids.shape[1]):
        logits = step(sm, cache, prompt_ids[:, t:t + 1])
    out = []
    for _ in range(max_new_tokens):
        if temperature > 0:
            nxt = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=gen)
        else:
            nxt = logits.argmax(-1, keepdim=True)
        out.append(nxt)
        logits = step(sm, cache, nxt)
    return torch.cat(out, dim=1)
