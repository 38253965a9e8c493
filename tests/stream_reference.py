"""StreamingLLM's long-stream perplexity procedure (examples/eval_long_ppl.py), re-implemented as a test
reference, independently of sinklab.stream:

- one token a step over one continuous stream;
- keys cached before RoPE, and every step re-rotated to positions 0..L-1 with the model's own rotary
  module (the query sits at L-1);
- after each forward, evict to [0:start] + [len-recent:len].

Works on models with one rotary module at `model.model.rotary_emb` (Llama, Mistral, Qwen2/3, SmolLM2).
"""
from __future__ import annotations

import inspect
import math

import torch
from transformers.cache_utils import Cache, DynamicLayer


def _rotate_half(x):
    return torch.cat([-x[..., x.shape[-1] // 2:], x[..., : x.shape[-1] // 2]], dim=-1)


class _PreRopeLayer(DynamicLayer):
    """Holds keys before RoPE; returns them rotated to positions 0..L-1."""

    def __init__(self, rotary):
        super().__init__()
        self.rotary = rotary  # None for a layer without RoPE (SmolLM3's NoPE layers)

    def _cos_sin(self, x, positions):
        if self.rotary is None:
            return torch.ones(()), torch.zeros(())
        cos, sin = self.rotary(x, positions.view(1, -1))
        return cos[:, None], sin[:, None]  # (1, 1, L, d)

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        length = self.keys.shape[-2] if self.keys.numel() else 0
        cos, sin = self._cos_sin(key_states, torch.tensor([length], device=key_states.device))
        unrotated = key_states * cos - _rotate_half(key_states) * sin  # back from the query's position
        self.keys = torch.cat([self.keys, unrotated], dim=-2) if length else unrotated
        self.values = torch.cat([self.values, value_states], dim=-2) if length else value_states
        cos, sin = self._cos_sin(key_states, torch.arange(length + 1, device=key_states.device))
        return self.keys * cos + _rotate_half(self.keys) * sin, self.values

    def evict(self, start: int, recent: int) -> None:
        length = self.keys.shape[-2]
        if length > start + recent:
            self.keys = torch.cat([self.keys[:, :, :start], self.keys[:, :, length - recent:]], dim=-2)
            self.values = torch.cat([self.values[:, :, :start], self.values[:, :, length - recent:]], dim=-2)

    def select(self, index: list[int]) -> None:
        self.keys, self.values = self.keys[:, :, index], self.values[:, :, index]


class StartRecentCache(Cache):
    def __init__(self, model, start: int, recent: int):
        rotary = model.model.rotary_emb
        uses_rope = {m.layer_idx: getattr(m, "use_rope", True) for m in model.modules()
                     if type(m).__name__.endswith("Attention")}
        super().__init__(layers=[_PreRopeLayer(rotary if uses_rope[i] else None)
                                 for i in range(model.config.num_hidden_layers)])
        self.start, self.recent = start, recent

    def evict(self) -> None:
        for layer in self.layers:
            layer.evict(self.start, self.recent)


class KeepCache(StartRecentCache):
    """The same, but an evicted token whose id is in `keep` joins up to `slots` kept tokens (the oldest
    leaves first), cached between the start and the recent ones: [start] + [kept] + [recent]."""

    def __init__(self, model, start: int, recent: int, keep, slots: int):
        super().__init__(model, start, recent)
        self.keep, self.slots = set(keep), slots
        self.cols, self.kept = [], []  # stream columns of the cached entries, of the kept ones

    def evict_after(self, ids: list[int]) -> None:
        self.cols.append(len(ids) - 1)
        window = self.cols[self.start + len(self.kept):]
        if len(window) <= self.recent:
            return
        gone, window = window[0], window[1:]
        if ids[gone] in self.keep:
            self.kept = (self.kept + [gone])[-self.slots:]
        order = self.cols[:self.start] + self.kept + window
        index = [self.cols.index(c) for c in order]
        for layer in self.layers:
            layer.select(index)
        self.cols = order


@torch.inference_mode()
def reference_nll(model, ids: torch.Tensor, start: int, recent: int, keep=None, slots: int = 0) -> torch.Tensor:
    """NLL (T-1,) of each next token of one stream `ids` (1, T) under StreamingLLM's procedure (with `keep`,
    evicted tokens of those ids kept in `slots` more entries)."""
    cache = StartRecentCache(model, start, recent) if keep is None else KeepCache(model, start, recent, keep, slots)
    key = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    nll = torch.empty(ids.shape[1] - 1, dtype=torch.float64)
    for t in range(ids.shape[1] - 1):
        position = torch.tensor([[cache.get_seq_length()]], device=ids.device)
        logits = model(input_ids=ids[:, t:t + 1], position_ids=position, use_cache=True, **{key: cache}).logits
        nll[t] = -torch.log_softmax(logits[0, -1].double(), dim=-1)[ids[0, t + 1]]
        if keep is None:
            cache.evict()
        else:
            cache.evict_after(ids[0, :t + 1].tolist())
    return nll


@torch.inference_mode()
def reference_greedy(model, prompt: torch.Tensor, start: int, recent: int, new_tokens: int) -> torch.Tensor:
    """Greedy continuation (1, new_tokens) of `prompt` (1, T), fed one token a step under the same procedure."""
    cache = StartRecentCache(model, start, recent)
    key = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    tokens, out = list(prompt[0].tolist()), []
    for t in range(prompt.shape[1] + new_tokens - 1):
        position = torch.tensor([[cache.get_seq_length()]])
        logits = model(input_ids=torch.tensor([[tokens[t]]]), position_ids=position, use_cache=True,
                       **{key: cache}).logits
        cache.evict()
        if t >= prompt.shape[1] - 1:
            tokens.append(int(logits[0, -1].argmax()))
            out.append(tokens[-1])
    return torch.tensor([out])


def ppl(nll: torch.Tensor) -> float:
    return math.exp(nll.double().mean().item())
