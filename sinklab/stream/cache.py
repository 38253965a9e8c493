"""SinkCache: a static ring buffer of n_sink + window + 1 slots per layer, for `generate` and streaming.

Layout of one layer (columns are the tokens of the padded batch, 0, 1, 2, ...):
    slots [0, head)        the sink region: columns 0..head-1 (head = left padding + n_sink), kept forever;
    slots [head, head + R) a ring of R = window + 1 slots: column c lives in slot head + (c - head) % R.
After each step the ring holds the `window` most recent tokens and one free slot, which the next token takes:
StreamingLLM's "start + recent" eviction without moving any memory.

Keys are stored as the model rotated them, at the position it gave (`slot_pos`). Every step, each slot is
turned by (target - slot_pos) positions in one fused rotation, where the targets are the positions inside
the cache (sinks 0..n_sink-1, then the window in order, the new token last), shifted by the query's own
position. With the positions StreamingLLM uses (inside the cache), the query sits at most at n_sink + window.
While the stream fits, every turn is 0 and the keys are exactly those of a full cache.

Layers whose native sliding window is shorter than the cache keep transformers' own sliding-window layer:
they never see more than their window, so the sink policy changes nothing for them.
"""
from __future__ import annotations

import torch
from transformers.cache_utils import Cache, CacheLayerMixin, DynamicSlidingWindowLayer

from ..errors import SinklabError
from .rope import layer_specs


def rotate(keys: torch.Tensor, turn: torch.Tensor, inv_freq: torch.Tensor | None) -> torch.Tensor:
    """Rotate RoPE keys (B, H, L, d) by `turn` (B, L) positions each, in LLaMA's rotate_half layout."""
    if inv_freq is None:
        return keys
    angle = turn.to(torch.float64)[:, None, :, None] * inv_freq.to(keys.device)  # (B, 1, L, d_rot / 2)
    cos = torch.cat([angle.cos(), angle.cos()], dim=-1).to(keys.dtype)
    sin = torch.cat([angle.sin(), angle.sin()], dim=-1).to(keys.dtype)
    rot = 2 * inv_freq.numel()
    part = keys[..., :rot]
    half = rot // 2
    turned = part * cos + torch.cat([-part[..., half:], part[..., :half]], dim=-1) * sin
    return torch.cat([turned, keys[..., rot:]], dim=-1) if rot < keys.shape[-1] else turned


def _mark_static(*tensors: torch.Tensor) -> None:
    """Fixed addresses, so compiled decoding can replay as a CUDA graph while the buffers change in place."""
    if not torch.compiler.is_compiling():
        for t in tensors:
            torch._dynamo.mark_static_address(t)


def left_padding(positions: torch.Tensor) -> int:
    """Pad columns before each row's first token, read from generate's positions (cumsum of the mask - 1, pads 0)."""
    if positions.shape[-1] < 2:
        return 0
    leading_zeros = (positions == 0).long().cumprod(dim=-1).sum(dim=-1)
    return int((leading_zeros - 1).clamp(min=0).max())


class Ring:
    """Slot bookkeeping shared by every sink layer: where the next token goes and how far each slot turns."""

    def __init__(self, n_sink: int, window: int, static: bool, freqs: list | None = None, kept=None):
        self.n_sink, self.window, self.static = n_sink, window, static
        self.freqs = freqs or []  # the distinct rotary frequencies of the sink layers (float64)
        self.kept = kept  # KeptTokens: later sink tokens kept past the ring, or None
        self.token_hint = None  # token ids of the step about to run (B, 1), which kept tokens need
        self.ready = False
        self.seen_int = 0  # tokens seen, kept as a Python int only when not static (it would recompile)
        self.position_hint = None  # positions of the step about to run, set by sinklab's own loop

    def allocate(self, batch: int, pad: int, device, dtype=torch.float32) -> None:
        self.pad, self.head = pad, pad + self.n_sink
        self.ring_len = self.window + 1
        self.size = self.head + self.ring_len + (self.kept.slots if self.kept else 0)
        self.seen = torch.zeros((), dtype=torch.long, device=device)
        self.write = torch.zeros(1, dtype=torch.long, device=device)
        self.slot_pos = torch.zeros(batch, self.size, dtype=torch.long, device=device)
        self.slot_col = torch.full((self.size,), -1, dtype=torch.long, device=device)
        self.turn = torch.zeros(batch, self.size, dtype=torch.long, device=device)
        self.freqs = [f.to(device) for f in self.freqs]
        self.cos = [torch.zeros(batch, 1, self.size, 2 * f.numel(), dtype=dtype, device=device) for f in self.freqs]
        self.sin = [torch.zeros_like(c) for c in self.cos]
        _mark_static(self.seen, self.write, self.slot_pos, self.slot_col, self.turn, *self.cos, *self.sin)
        if self.kept:
            self.kept.allocate(self, batch, device)
        self.ready = True

    @property
    def capacity(self) -> int:
        """Slots before any padding: sinks, the window, the next token's slot and the kept tokens'."""
        return self.n_sink + self.window + 1 + (self.kept.slots if self.kept else 0)

    def seen_now(self) -> int:
        return int(self.seen) if self.static else self.seen_int

    def live(self) -> int:
        """Tokens held before the next step (all of them, or sinks + window)."""
        return min(self.seen_now(), self.size - 1) if self.ready else 0

    def query_offset(self):
        if not self.ready:
            return 0
        return self.seen.clamp(max=self.size - 1) if self.static else self.live()

    def slots_of(self, columns: torch.Tensor) -> torch.Tensor:
        return torch.where(columns < self.head, columns, self.head + (columns - self.head).remainder(self.ring_len))

    def advance_one(self, pos: torch.Tensor) -> None:
        """One new token per row at model positions `pos` (B, 1): take the free slot, compute every slot's turn."""
        seen = self.seen
        write = self.slots_of(seen.view(1))
        self.write.copy_(write)
        if self.kept:  # the eviction was handled by kept.evict before the step; note the new token's id
            self.kept.tokens.index_copy_(1, write, self._tokens().to(write.device).long().view(-1, 1))
        self.slot_pos.index_copy_(1, write, pos)
        self.slot_col.index_copy_(0, write, seen.view(1))
        query = seen.clamp(max=self.size - 1)  # the new token's position inside the cache
        if self.kept:  # the kept tokens so far sit between the sinks and the window
            kept = self.kept.count.clamp(max=self.kept.slots).view(-1, 1)
            query = seen.clamp(max=self.head + self.ring_len - 1) + kept
        index = torch.arange(self.size, device=seen.device)
        inside = torch.where(index < self.head, index, query - (seen - self.slot_col))
        if self.kept:
            ring_part = inside[..., : self.kept.base].expand(pos.shape[0], -1)
            inside = torch.cat([ring_part, self.kept.inside(self, query)], dim=1)
        self.turn.copy_(pos - query + inside - self.slot_pos)
        for freq, cos, sin in zip(self.freqs, self.cos, self.sin):
            angle = self.turn.to(torch.float64)[:, None, :, None] * freq
            cos.copy_(torch.cat([angle.cos(), angle.cos()], dim=-1))
            sin.copy_(torch.cat([-angle.sin(), angle.sin()], dim=-1))  # rotate_half's sign folded in
        self.seen.add_(1)
        if not self.static:
            self.seen_int += 1

    def _tokens(self) -> torch.Tensor:
        if self.token_hint is None:
            raise SinklabError("keeping sink tokens needs each step's token ids: stream through "
                               "sinklab.stream.Streamer (sinklab stream --eval)")
        return self.token_hint

    def advance_chunk(self, pos: torch.Tensor) -> dict:
        """Several tokens at once (a prompt): the live slots in column order, their turns, and where the new go."""
        if self.kept:
            raise SinklabError("keeping sink tokens needs one token a step (sinklab.stream.Streamer); "
                               "a prompt of several tokens would evict them unseen")
        seen, length = self.seen_now(), pos.shape[-1]
        device = self.seen.device
        columns = torch.cat([torch.arange(min(seen, self.head), device=device),
                             torch.arange(min(seen, max(self.head, seen - self.window)), seen, device=device)])
        order = self.slots_of(columns)
        inside = torch.arange(columns.numel(), device=device)
        turn = pos[:, :1] - columns.numel() + inside - self.slot_pos[:, order]
        new_cols = torch.arange(seen, seen + length, device=device)
        kept = torch.nonzero((new_cols < self.head) | (new_cols >= seen + length - self.window)).flatten()
        slots = self.slots_of(new_cols[kept])
        self.slot_pos.index_copy_(1, slots, pos[:, kept])
        self.slot_col.index_copy_(0, slots, new_cols[kept])
        self.seen.add_(length)
        self.seen_int += length
        return {"order": order, "turn": turn, "kept": kept, "slots": slots}


class KeptTokens:
    """Later sink tokens, kept in `slots` slots past the ring when the window evicts them.

    They are named by token id beforehand (e.g. the `later` rows of `sinklab measure`'s sink_tokens.csv):
    attention weights are never read at stream time, so SDPA, CUDA graphs and compiled steps stay as they
    are, and the rule is the measurement's, not a guess made on the fly. When the slots are full the oldest
    kept token gives way. Kept tokens sit just before the window inside the cache, in stream order; a slot
    not yet filled is masked out through the step's attention mask (`valid`)."""

    def __init__(self, ids, slots: int):
        self.ids = sorted({int(i) for i in ids})
        if not self.ids or min(self.ids) < 0:
            raise SinklabError(f"keeping sink tokens needs one or more token ids >= 0 (got {list(ids)})")
        if not isinstance(slots, int) or slots < 1:
            raise SinklabError(f"kept sink-token slots must be at least 1 (got {slots})")
        self.slots = slots

    def allocate(self, ring: Ring, batch: int, device) -> None:
        self.base = ring.head + ring.ring_len
        self.table = torch.zeros(max(self.ids) + 1, dtype=torch.bool, device=device)
        self.table[self.ids] = True
        self.tokens = torch.full((batch, ring.size), -1, dtype=torch.long, device=device)  # id in each ring slot
        self.col = torch.full((batch, self.slots), -1, dtype=torch.long, device=device)   # column of each kept
        self.count = torch.zeros(batch, dtype=torch.long, device=device)
        self.valid = torch.ones(batch, ring.size, dtype=torch.long, device=device)
        self.valid[:, self.base:] = 0
        self.flag = torch.zeros(batch, dtype=torch.bool, device=device)
        self.target = torch.full((batch,), self.base, dtype=torch.long, device=device)
        _mark_static(self.tokens, self.col, self.count, self.valid, self.flag, self.target)

    def evict(self, ring: Ring) -> torch.Tensor:
        """Before a step: flag the rows whose token in the slot the new one takes (the one the window evicts)
        is kept, and copy its bookkeeping into the oldest kept slot (each layer's `move` copies its key and
        value). Returns the kept count per row (B, 1): the new token's position inside the cache is
        n_sink + kept + window."""
        write = ring.slots_of(ring.seen.view(1))
        old = self.tokens.index_select(1, write).squeeze(1)
        known = (old >= 0) & (old < self.table.numel())
        self.flag.copy_(known & self.table[old.clamp(0, self.table.numel() - 1)])
        self.target.copy_(self.base + self.count % self.slots)
        t, j, f = self.target.unsqueeze(1), (self.target - self.base).unsqueeze(1), self.flag.unsqueeze(1)
        ring.slot_pos.scatter_(1, t, torch.where(f, ring.slot_pos.index_select(1, write), ring.slot_pos.gather(1, t)))
        self.col.scatter_(1, j, torch.where(f, ring.seen - ring.ring_len, self.col.gather(1, j)))
        self.valid.scatter_(1, t, self.valid.gather(1, t) | f.long())
        self.count.add_(self.flag.long())
        return self.count.clamp(max=self.slots).view(-1, 1)

    def move(self, keys: torch.Tensor, values: torch.Tensor, write: torch.Tensor) -> None:
        """Copy one layer's flagged evicted key and value into their kept slot (others rewrite what is there)."""
        flag = self.flag.view(-1, 1, 1, 1)
        for buf in (keys, values):
            idx = self.target.view(-1, 1, 1, 1).expand(buf.shape[0], buf.shape[1], 1, buf.shape[3])
            buf.scatter_(2, idx, torch.where(flag, buf.index_select(2, write), buf.gather(2, idx)))

    def inside(self, ring: Ring, query: torch.Tensor) -> torch.Tensor:
        """(B, slots) positions inside the cache of the kept tokens: in stream order, just before the window."""
        valid = self.col >= 0
        rank = ((self.col.unsqueeze(1) < self.col.unsqueeze(2)) & valid.unsqueeze(1)).sum(-1)
        before = query - ring.window - valid.sum(-1, keepdim=True)
        return torch.where(valid, before + rank, torch.zeros_like(rank))


def _positions(kwargs: dict, ring: Ring, key_states: torch.Tensor) -> torch.Tensor:
    """The model positions of the new keys (B, L): from the attention's kwargs, else those the caller gave
    the ring (models that pass no kwargs to the cache), else right after the tokens seen."""
    inner = kwargs.get("kwargs") if isinstance(kwargs.get("kwargs"), dict) else kwargs
    pos = inner.get("position_ids")
    pos = ring.position_hint if pos is None else pos
    batch, length = key_states.shape[0], key_states.shape[-2]
    if pos is None:
        start = ring.seen if ring.ready else 0
        pos = start + torch.arange(length, device=key_states.device).unsqueeze(0)
    if pos.dim() != 2:
        raise SinklabError(f"the sink cache needs position ids of shape (batch, tokens), got {tuple(pos.shape)}")
    return pos.to(device=key_states.device, dtype=torch.long).expand(batch, length)


class SinkLayer(CacheLayerMixin):
    """One layer's keys and values in the shared ring layout (see the module docstring)."""

    is_compileable = True
    is_sliding = False
    is_croppable = False

    def __init__(self, ring: Ring, inv_freq: torch.Tensor | None, leader: bool, sliding_window: int | None = None):
        super().__init__()
        self.ring, self.inv_freq, self.leader, self.sliding_window = ring, inv_freq, leader, sliding_window
        self.table = None if inv_freq is None else _index_of(ring.freqs, inv_freq)

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        batch, heads = key_states.shape[:2]
        self.device = key_states.device
        size = self.ring.size
        self.keys = key_states.new_zeros(batch, heads, size, key_states.shape[-1])
        self.values = value_states.new_zeros(batch, heads, size, value_states.shape[-1])
        if self.inv_freq is not None:
            self.inv_freq = self.inv_freq.to(self.device)
        _mark_static(self.keys, self.values)
        self.is_initialized = True

    def _start_step(self, key_states: torch.Tensor, kwargs: dict) -> None:
        ring = self.ring
        pos = _positions(kwargs, ring, key_states)
        if not ring.ready:
            pad = left_padding(pos) if key_states.shape[-2] > 1 else 0
            if self.sliding_window is not None and pad + ring.capacity > self.sliding_window:
                raise SinklabError(f"left padding of {pad} tokens makes the sink cache larger than the model's "
                                   f"sliding window of {self.sliding_window}; pad less or shrink the window")
            ring.allocate(key_states.shape[0], pad, key_states.device, key_states.dtype)
        if key_states.shape[-2] == 1:
            ring.advance_one(pos)
        else:
            ring.chunk = ring.advance_chunk(pos)

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if self.leader:
            self._start_step(key_states, kwargs)
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        ring = self.ring
        if key_states.shape[-2] > 1:
            return self._update_chunk(key_states, value_states, ring.chunk)
        if ring.kept:
            ring.kept.move(self.keys, self.values, ring.write)
        self.keys.index_copy_(2, ring.write, key_states)
        self.values.index_copy_(2, ring.write, value_states)
        n = ring.size if ring.static else min(ring.seen_int, ring.size)
        return self._turned(n), self.values[:, :, :n]

    def _turned(self, n: int) -> torch.Tensor:
        """The first n slots' keys turned by this step's tables (one fused operation when compiled)."""
        keys = self.keys[:, :, :n]
        if self.table is None:
            return keys
        cos, sin = self.ring.cos[self.table][:, :, :n], self.ring.sin[self.table][:, :, :n]
        rot = cos.shape[-1]
        part = keys[..., :rot]
        turned = part * cos + part.roll(rot // 2, dims=-1) * sin
        return torch.cat([turned, keys[..., rot:]], dim=-1) if rot < keys.shape[-1] else turned

    def _update_chunk(self, key_states, value_states, step: dict):
        live_keys = rotate(self.keys[:, :, step["order"]], step["turn"], self.inv_freq)
        live_values = self.values[:, :, step["order"]]
        self.keys.index_copy_(2, step["slots"], key_states[:, :, step["kept"]])
        self.values.index_copy_(2, step["slots"], value_states[:, :, step["kept"]])
        return torch.cat([live_keys, key_states], dim=-2), torch.cat([live_values, value_states], dim=-2)

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        ring = self.ring
        if query_length == 1 and ring.static:  # a first single token lays out the ring without padding
            return (ring.size if ring.ready else ring.capacity), 0
        if not ring.ready:
            return query_length, 0
        return ring.live() + query_length, 0

    def get_seq_length(self):
        ring = self.ring
        if not ring.ready:
            return 0
        return ring.seen if ring.static else ring.seen_int

    def get_max_length(self) -> int:
        return self.ring.size if self.ring.ready else self.ring.capacity

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        if self.is_initialized:
            beam_idx = beam_idx.to(self.device)
            self.keys.copy_(self.keys.index_select(0, beam_idx))
            self.values.copy_(self.values.index_select(0, beam_idx))
            if self.leader:
                self.ring.slot_pos.copy_(self.ring.slot_pos.index_select(0, beam_idx))

    def crop(self, tokens_to_remove: int) -> None:
        raise SinklabError("the sink cache cannot be cropped: evicted tokens are gone (assisted decoding needs crop)")

    def batch_repeat_interleave(self, repeats: int) -> None:
        raise SinklabError("the sink cache cannot change its batch size; build it for the final batch")

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        raise SinklabError("the sink cache cannot change its batch size; build it for the final batch")


class SinkCache(Cache):
    """StreamingLLM's cache for transformers 5: the first `n_sink` tokens plus the last `window`.

        model.generate(**inputs, past_key_values=SinkCache(model, n_sink=4, window=252), max_new_tokens=...)

    Works on RoPE models (Llama, Mistral, Qwen2/3, Gemma 3, SmolLM2/3) and left-padded batches; refuses by
    name the models whose positions it cannot move (learned absolute positions, length-dependent RoPE).
    In a left-padded batch the sink region is the first n_sink columns after the longest padding, so a row
    with less padding keeps that many more of its first tokens.
    """

    def __init__(self, model, n_sink: int = 4, window: int = 252, name: str | None = None,
                 keep_ids=None, keep_slots: int = 0):
        if not hasattr(Cache, "get_query_offset"):
            import transformers

            raise SinklabError(f"the sink cache needs a transformers whose masks read Cache.get_query_offset "
                               f"(5.24 does); this is {transformers.__version__}")
        kept = KeptTokens(keep_ids, keep_slots) if keep_ids is not None else None
        check_sizes(model, n_sink, window, kept.slots if kept else 0)
        specs = layer_specs(model, name)
        capacity = n_sink + window + 1 + (kept.slots if kept else 0)
        native = [s.sliding_window is not None and s.sliding_window < capacity for s in specs]
        if all(native):
            raise SinklabError(f"every layer's sliding window ({specs[0].sliding_window}) is shorter than the "
                               f"sink cache ({capacity}); the model's own cache is already bounded")
        if kept and any(native):
            raise SinklabError("keeping sink tokens needs every layer in the sink cache's layout; this model has "
                               "sliding-window layers shorter than the cache")
        self.ring = Ring(n_sink, window, static=not any(native), freqs=[], kept=kept)
        leader = native.index(False)
        layers = [DynamicSlidingWindowLayer(sliding_window=s.sliding_window) if is_native
                  else SinkLayer(self.ring, s.inv_freq, i == leader, s.sliding_window)
                  for i, (s, is_native) in enumerate(zip(specs, native))]
        super().__init__(layers=layers)

    @property
    def is_static(self) -> bool:
        """Every layer in the ring layout: fixed shapes, so decoding can be compiled into one graph."""
        return self.ring.static

    def get_query_offset(self, layer_idx: int = 0):
        layer = self.layers[layer_idx] if layer_idx < len(self.layers) else None
        return layer.ring.query_offset() if isinstance(layer, SinkLayer) else super().get_query_offset(layer_idx)

    def reset(self) -> None:
        for layer in self.layers:
            layer.keys = layer.values = None
            layer.is_initialized = False
            if hasattr(layer, "cumulative_length"):
                layer.cumulative_length = 0
        self.ring = _fresh(self.ring)
        for layer in self.layers:
            if isinstance(layer, SinkLayer):
                layer.ring = self.ring


def _fresh(ring: Ring) -> Ring:
    kept = KeptTokens(ring.kept.ids, ring.kept.slots) if ring.kept else None
    return Ring(ring.n_sink, ring.window, ring.static, ring.freqs, kept)


def _index_of(freqs: list, inv_freq: torch.Tensor) -> int:
    """Index of inv_freq among the distinct frequencies, added if new: layers that share it share one table."""
    for i, f in enumerate(freqs):
        if f.shape == inv_freq.shape and torch.equal(f.cpu(), inv_freq.cpu()):
            return i
    freqs.append(inv_freq)
    return len(freqs) - 1


def check_sizes(model, n_sink: int, window: int, keep_slots: int = 0) -> None:
    """One clear error for a cache the model cannot hold."""
    if not isinstance(window, int) or window < 1:
        raise SinklabError(f"window must be at least 1 (got {window})")
    if not isinstance(n_sink, int) or n_sink < 0:
        raise SinklabError(f"n_sink must be >= 0 (got {n_sink})")
    cfg = model.config.get_text_config(decoder=True) if hasattr(model.config, "get_text_config") else model.config
    context = getattr(cfg, "max_position_embeddings", None)
    if context and n_sink + window + 1 + keep_slots > context:
        raise SinklabError(f"n_sink + window + 1{' + kept slots' if keep_slots else ''} = "
                           f"{n_sink + window + 1 + keep_slots} is larger than the model's context of {context} tokens")
