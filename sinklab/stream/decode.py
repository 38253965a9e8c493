"""Streaming with the sink cache: one token a step (StreamingLLM's procedure), perplexity, generation."""
from __future__ import annotations

import inspect
import math
import os
import time

import torch

from ..errors import SinklabError
from ..tokens import check_token_ids, embedding_rows
from .cache import SinkCache
from .options import cache_sizes, check_temperature

POLICIES = ("full", "window", "sink", "recompute", "keep")
DEFAULT_POLICIES = ("full", "window", "sink", "recompute")  # keep needs the ids of the tokens to keep


def cache_kwarg(model) -> str:
    """transformers >= 5.2x names the forward's cache argument `cache`; older releases `past_key_values`."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def nll_rows(logits: torch.Tensor, targets: torch.Tensor, rows: int = 1024) -> torch.Tensor:
    """Per-token NLL over (N, V) rows, in float64, `rows` at a time: logits (..., V), targets (...) -> (...)."""
    flat, goal = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1, 1)
    out = torch.empty(goal.shape[0], dtype=torch.float64, device=logits.device)
    for i in range(0, goal.shape[0], rows):
        chunk = flat[i:i + rows].double()
        out[i:i + rows] = torch.logsumexp(chunk, dim=-1) - chunk.gather(-1, goal[i:i + rows]).squeeze(-1)
    return out.view(targets.shape)


class Streamer:
    """Feeds a batch of streams one token a step through a SinkCache.

    Positions are assigned inside the cache (sinks 0..n_sink-1, the window after them), as StreamingLLM
    does. A model with native sliding-window layers shorter than the cache gets its true positions instead,
    since those layers keep transformers' own window. `decode`: "eager"; "graph", the step captured once
    as a CUDA graph and replayed; "compile", torch.compile (CUDA graphs on a GPU); "auto", graph on a GPU.
    Both need the static layout; the first steps run eagerly and lay out the buffers.
    """

    def __init__(self, model, n_sink: int, window: int, decode: str = "eager", name: str | None = None,
                 keep_ids=None, keep_slots: int = 0):
        self.model = model
        self.cache = SinkCache(model, n_sink, window, name=name, keep_ids=keep_ids, keep_slots=keep_slots)
        self.last_position = n_sink + window
        self.key = cache_kwarg(model)
        on_gpu = next(model.parameters()).device.type == "cuda"
        self.decode = resolve_decode(decode, on_gpu, self.cache.is_static)
        self.compiled, self.graph, self.steps = None, None, 0
        self.use_graph = self.decode == "graph"
        if self.decode == "compile":
            self.compiled = torch.compile(self._forward, mode="reduce-overhead" if on_gpu else None, dynamic=False)
            self.marks_steps = on_gpu

    def _forward(self, tokens: torch.Tensor) -> torch.Tensor:
        ring = self.cache.ring
        seen = ring.seen if ring.ready else torch.zeros((), dtype=torch.long, device=tokens.device)
        pos = seen.clamp(max=self.last_position) if self.cache.is_static else seen
        pos = pos.view(1, 1).expand(tokens.shape[0], 1)
        if ring.kept and ring.ready:  # tokens kept past the window move the new one along
            pos = pos + ring.kept.evict(ring)
        ring.position_hint, ring.token_hint = pos, tokens
        extra = {"attention_mask": ring.kept.valid} if ring.kept and ring.ready else {}  # unfilled kept slots
        out = self.model(input_ids=tokens, position_ids=pos, use_cache=True, **{self.key: self.cache}, **extra)
        return out.logits[:, -1].float()

    @torch.inference_mode()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """One token per stream (B, 1) -> next-token logits (B, V), float32."""
        self.steps += 1
        if self.use_graph and self.steps > WARM_STEPS:
            return self._replay(tokens)
        if self.use_graph or self.compiled is None or not self.cache.ring.ready:
            return self._warm(tokens) if self.use_graph else self._forward(tokens)
        if self.marks_steps:
            torch.compiler.cudagraph_mark_step_begin()
        return self.compiled(tokens).clone()

    def _warm(self, tokens: torch.Tensor) -> torch.Tensor:
        """Eager steps on a side stream before capture, as CUDA graph capture needs."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            logits = self._forward(tokens)
        torch.cuda.current_stream().wait_stream(side)
        return logits

    def _replay(self, tokens: torch.Tensor) -> torch.Tensor:
        """The decoding step captured once as a CUDA graph (every buffer is static), then replayed."""
        if self.graph is None:
            self.tokens = tokens.clone()
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.logits = self._forward(self.tokens)
        self.tokens.copy_(tokens)
        self.graph.replay()
        return self.logits.clone()


WARM_STEPS = 3


DECODE_MODES = ("auto", "eager", "graph", "compile")


def resolve_decode(decode: str, on_gpu: bool, static: bool) -> str:
    if decode not in DECODE_MODES:
        raise SinklabError(f"unknown decode mode {decode!r}: use one of {', '.join(DECODE_MODES)}")
    if decode == "auto":
        return "graph" if on_gpu and static else "eager"
    if decode == "graph" and not on_gpu:
        raise SinklabError("decode mode 'graph' needs a CUDA device")
    return decode if static else "eager"


def stream_logits(model, ids: torch.Tensor, n_sink: int, window: int) -> torch.Tensor:
    """Token-by-token logits (B, T, V) through the sink cache."""
    streamer = Streamer(model, n_sink, window)
    return torch.stack([streamer.step(ids[:, t:t + 1]) for t in range(ids.shape[1])], dim=1)


def _progress(total: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False,
                disable=not progress or os.environ.get("SINKLAB_NO_PROGRESS") == "1")


@torch.inference_mode()
def stream_nll(model, ids: torch.Tensor, n_sink: int, window: int, decode: str = "eager", progress: bool = False,
               desc: str = "stream", chunk: int = 256, name: str | None = None, keep_ids=None,
               keep_slots: int = 0) -> tuple[torch.Tensor, list[dict]]:
    """NLL of every next token (B, T-1) with the sink cache, and tokens/s per `chunk` positions. With
    `keep_ids`, evicted tokens of those ids are kept in `keep_slots` more slots (KeptTokens)."""
    streamer = Streamer(model, n_sink, window, decode=decode, name=name, keep_ids=keep_ids, keep_slots=keep_slots)
    batch, length = ids.shape
    nll = torch.empty(batch, length - 1, dtype=torch.float64, device=ids.device)
    rates, t_chunk = [], time.perf_counter()
    with _progress(length - 1, desc, progress) as bar:
        for t in range(length - 1):
            nll[:, t] = nll_rows(streamer.step(ids[:, t:t + 1]), ids[:, t + 1])
            bar.update(1)
            if (t + 1) % chunk == 0:
                nll[0, t].item()  # wait for the device before reading the clock
                now = time.perf_counter()
                rates.append({"position": t + 1, "tokens_per_s": round(chunk * batch / (now - t_chunk), 1)})
                t_chunk = now
    return nll, rates


def _recompute_nll(model, ids: torch.Tensor, cache_size: int, stride: int, progress: bool) -> torch.Tensor:
    """Sliding window with recomputation (the quality reference): every stride-th token from a fresh pass."""
    batch, length = ids.shape
    nll = torch.full((batch, length - 1), float("nan"), dtype=torch.float64, device=ids.device)
    positions = list(range(cache_size, length - 1, stride))
    with _progress(len(positions), "recompute", progress) as bar:
        for t in positions:
            logits = model(input_ids=ids[:, t - cache_size + 1: t + 1]).logits[:, -1]  # predicts ids[t + 1]
            nll[:, t] = nll_rows(logits, ids[:, t + 1])
            bar.update(1)
    return nll


@torch.inference_mode()
def perplexity(sm, ids: torch.Tensor, cache_size: int = 256, n_sink: int = 4, policies=DEFAULT_POLICIES,
               recompute_stride: int = 32, progress: bool = True, decode: str = "eager", keep_ids=None,
               keep_slots: int = 4) -> dict:
    """Per-token NLL over (streams, T) tokens for each policy, plus tokens/s.

    full: one causal pass (the unbounded cache), only where T fits the context;
    window: cache of the last `cache_size` tokens; sink: n_sink + (cache_size - n_sink);
    keep: n_sink + keep_slots for evicted tokens whose id is in `keep_ids` + the rest as the window;
    recompute: every `recompute_stride`-th token is scored from a fresh pass over its last cache_size tokens.
    Each cache holds `cache_size` tokens between steps; the token being scored is one more.
    """
    from .prepare import prepare_stream

    sm = prepare_stream(sm)
    _check_keep(policies, keep_ids, keep_slots, cache_size, n_sink)
    ids = check_token_ids(ids, embedding_rows(sm.model), "ids").to(sm.device)
    batch, length = ids.shape
    if length < 2:
        raise SinklabError(f"perplexity needs at least 2 tokens a stream (got {length}): the first is never scored")
    out = _perplexity_result(length, batch, cache_size, n_sink, policies, keep_ids, keep_slots)
    for policy in policies:
        t0 = time.perf_counter()
        if policy == "full":
            if sm.max_context and length > sm.max_context:
                continue
            nll = nll_rows(sm.model(input_ids=ids).logits[:, :-1], ids[:, 1:])
        elif policy in ("window", "sink", "keep"):
            nll, out["tokens_per_s_by_position"][policy] = _cached_nll(sm, ids, policy, cache_size, n_sink, decode,
                                                                       progress, keep_ids, keep_slots)
        else:
            nll = _recompute_nll(sm.model, ids, cache_size, recompute_stride, progress)
        nll = nll.cpu()
        out["nll"][policy] = nll
        out["tokens_per_s"][policy] = round(int(torch.isfinite(nll).sum()) / (time.perf_counter() - t0), 2)
    return out


def _perplexity_result(length: int, batch: int, cache_size: int, n_sink: int, policies, keep_ids,
                       keep_slots: int) -> dict:
    """perplexity's result before any policy is scored: the settings, and empty tables per policy."""
    out = {"T": length, "streams": batch, "cache_size": cache_size, "n_sink": n_sink, "nll": {}, "tokens_per_s": {},
           "tokens_per_s_by_position": {}}
    if "keep" in policies:
        out.update(keep_ids=sorted({int(i) for i in keep_ids}), keep_slots=keep_slots)
    return out


def _cached_nll(sm, ids, policy: str, cache_size: int, n_sink: int, decode: str, progress: bool, keep_ids,
                keep_slots: int) -> tuple[torch.Tensor, list[dict]]:
    """(NLL, tokens/s by position) of a bounded-cache policy. Every policy holds `cache_size` tokens:
    window is all window; sink gives n_sink of them to the sinks; keep gives keep_slots more to kept tokens."""
    sinks = 0 if policy == "window" else n_sink
    slots = keep_slots if policy == "keep" else 0
    window, _ = cache_sizes(cache_size, sinks, keep_slots=slots)
    return stream_nll(sm.model, ids, sinks, window, decode, progress,
                      f"stream {policy}", name=sm.name, keep_ids=keep_ids if slots else None,
                      keep_slots=slots)


def _check_keep(policies, keep_ids, keep_slots: int, cache_size: int, n_sink: int) -> None:
    if "keep" not in policies:
        return
    if not keep_ids:
        raise SinklabError("policy 'keep' needs the ids of the sink tokens to keep (keep_ids)")
    if not isinstance(keep_slots, int) or keep_slots < 1 or n_sink + keep_slots >= cache_size:
        raise SinklabError(f"policy 'keep': {keep_slots} kept slots and {n_sink} sinks must leave room for a "
                           f"window in a cache of {cache_size}")


def _ppl(nll: torch.Tensor) -> float | None:
    finite = nll[torch.isfinite(nll)]
    return round(math.exp(finite.double().mean().item()), 4) if finite.numel() else None


def summarise(result: dict, stride: int | None = None) -> list[dict]:
    """Perplexity per policy over all scored tokens, past the cache, and over the recompute positions."""
    cs = result["cache_size"]
    ref = result["nll"].get("recompute")
    mask = torch.isfinite(ref) if ref is not None else None
    rows = []
    for policy, nll in result["nll"].items():
        row = {"policy": policy, "ppl_all": _ppl(nll) if policy != "recompute" else None,
               "ppl_past_cache": _ppl(nll[:, cs:]), "tokens_per_s": result["tokens_per_s"][policy]}
        if mask is not None:
            row["ppl_on_recompute_positions"] = _ppl(nll[mask])
        rows.append(row)
    return rows


def default_window(model, n_sink: int, wanted: int = 1020) -> int:
    """The generation window: `wanted`, or as much as the model's context holds beside the sinks and the query."""
    cfg = model.config.get_text_config(decoder=True) if hasattr(model.config, "get_text_config") else model.config
    context = getattr(cfg, "max_position_embeddings", None)
    return max(1, min(wanted, context - n_sink - 1)) if context else wanted


def _prompt_ids(sm, prompt) -> torch.Tensor:
    if isinstance(prompt, str):
        if sm.tokenizer is None or sm.tokenizer.encode is None:
            raise SinklabError(f"{sm.name} has no tokenizer; pass token ids instead of text")
        prompt = sm.tokenizer.encode(prompt)
    if isinstance(prompt, list) and not prompt:
        raise SinklabError("the prompt is empty after tokenisation")
    ids = check_token_ids(prompt, embedding_rows(sm.model), "the prompt", ranks=(1, 2))
    ids = ids.unsqueeze(0) if ids.dim() == 1 else ids
    if sm.max_context and ids.shape[1] > sm.max_context:
        raise SinklabError(f"the prompt has {ids.shape[1]} tokens, more than the model's context of "
                           f"{sm.max_context}; score long texts with --eval")
    return ids


@torch.inference_mode()
def generate(model, prompt, max_new_tokens: int = 100, n_sink: int = 4, window: int | None = None,
             temperature: float = 0.0, seed: int = 0, attention_mask: torch.Tensor | None = None,
             stop_at_eos: bool = True, compile: bool | None = None, tokenizer=None):
    """Continue `prompt` (text, token ids, or a left-padded (B, T) batch) with transformers' `generate` and
    a SinkCache: memory stays constant however long the output. Text in, text out; ids in, new ids out.

    `model` is what `sinklab.load.load_model` returns (or `prepare_stream` of it), or a transformers
    `PreTrainedModel` with its `tokenizer` (needed for text prompts). `compile` (default: on a GPU
    for 2,048 new tokens or more) lets transformers compile the decoding step.
    """
    from .prepare import prepare_stream

    sm = prepare_stream(model, tokenizer)
    _check_generate_args(max_new_tokens, temperature)
    ids = _prompt_ids(sm, prompt)
    if attention_mask is not None and attention_mask.device != ids.device:
        raise SinklabError(f"the attention mask is on {attention_mask.device} and the prompt on {ids.device}; "
                           "put the whole batch on one device")
    ids = ids.to(sm.device)
    attention_mask = attention_mask.to(sm.device) if attention_mask is not None else None
    window = default_window(sm.model, n_sink) if window is None else window
    cache = SinkCache(sm.model, n_sink, window, name=sm.name)
    config = _generation_config(sm, max_new_tokens, temperature, stop_at_eos, compile)
    torch.manual_seed(seed)
    mask = attention_mask if attention_mask is not None else torch.ones_like(ids)
    out = sm.model.generate(input_ids=ids, attention_mask=mask, generation_config=config,
                            **{cache_kwarg(sm.model): cache})
    return _decoded(sm, prompt, out[:, ids.shape[1]:])


def _check_generate_args(max_new_tokens, temperature) -> None:
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise SinklabError(f"max_new_tokens must be at least 1 (got {max_new_tokens})")
    check_temperature(temperature)


def _generation_config(sm, max_new_tokens: int, temperature: float, stop_at_eos: bool, compile: bool | None):
    """transformers' GenerationConfig: greedy at temperature 0, else sampling at that temperature with no
    top-k or top-p filter; EOS stops unless told not to; by default, compiled for long generations on a GPU."""
    from transformers import GenerationConfig

    compile = sm.device.type == "cuda" and max_new_tokens >= 2048 if compile is None else compile
    eos = getattr(sm.model.generation_config, "eos_token_id", None) if stop_at_eos else None
    return GenerationConfig(max_new_tokens=max_new_tokens, do_sample=temperature > 0,
                            temperature=temperature if temperature > 0 else None, top_k=None, top_p=None,
                            eos_token_id=eos, pad_token_id=eos if isinstance(eos, int) else 0,
                            disable_compile=not compile)


def _decoded(sm, prompt, new: torch.Tensor):
    """Text in, text out (HF's tokenizer, or a checkpoint's own); ids in, or no decoder: the new ids."""
    if isinstance(prompt, str):
        if sm.hf_tokenizer is not None:
            return sm.hf_tokenizer.decode(new[0], skip_special_tokens=True)
        if sm.tokenizer is not None and sm.tokenizer.decode is not None:
            return sm.tokenizer.decode(new[0].tolist())
    return new
