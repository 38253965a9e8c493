"""Capture attention through public extension points and reduce it as it is computed.

Two producers feed one `AttentionRecorder`:
- Hugging Face models: an attention function registered with `AttentionInterface` (and the SDPA mask
  builder under the same name), selected with `attn_implementation="sinklab"`;
- sinklab's own decoder: it calls `recorder.observe(...)` from its attention module.

Every layer is reduced to per-sample importance scores and a few norms before the next layer runs,
so nothing of size (layers, T, T) is ever held.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
from dataclasses import dataclass

import torch

from ..errors import SinklabError
from . import metrics
from ..kernels import attention_sums as fused

ATTN_IMPLEMENTATION = "sinklab"
ATTN_FULL_MASK = "sinklab_full_mask"   # the same function, always given eager's (T, T) mask

_active_recorder: contextvars.ContextVar["AttentionRecorder | None"] = contextvars.ContextVar(
    "sinklab_recorder", default=None)


@dataclass
class LayerCapture:
    """What one layer leaves behind for one batch."""
    alpha: torch.Tensor                # (batch, heads, T) importance scores of the real tokens
    alpha_extra: torch.Tensor | None   # (batch, heads, n_extra) for added keys (sink token, K bias, sink logit)
    key_ratio: torch.Tensor            # scalar tensors, on the layer's device until the batch ends
    value_ratio: torch.Tensor
    qk: dict
    attention_map: torch.Tensor | None = None  # (heads, T, T) for sample 0, only when asked
    alpha_mask_aware: torch.Tensor | None = None  # (batch, heads, T): averaged over the queries that see k
    # unnormalised attention (the metric reads proxy scores): the weights the model really applies
    weight_raw: torch.Tensor | None = None  # (batch, heads, T): mean raw weight on key k over the queries that see it
    row_mass: torch.Tensor | None = None    # (batch, heads): mean over queries of the row's raw weight sum
    # learned sinks: alpha of the weights renormalised over the real tokens, as an output-gate sink
    # (granite_swa) shows them; `alpha` is the weights applied, the extra-column convention (gpt-oss)
    alpha_tokens_only: torch.Tensor | None = None


class AttentionRecorder:
    """Collects one `LayerCapture` per layer for the batch in flight.

    A plain class, not a dataclass: FSDP's mixed-precision input cast rebuilds dataclasses found in
    a module's arguments, so the layers would record into a copy (Sink measured nothing under FSDP
    on a GPU)."""

    def __init__(self, keep_map_upto: int = 0, budget_elems: int = 1 << 23):
        self.keep_map_upto = keep_map_upto        # store sample 0's full attention when T <= this
        self.budget_elems = budget_elems          # one block of attention weights: 32 MB in float32
        self.layers: dict[int, LayerCapture] = {}
        self.hidden_ratio: dict[int, float] = {}
        self.branches: dict[str, dict[int, LayerCapture]] = {}  # e.g. NSA's compressed / window
        self.passes: dict[int, tuple[int, int]] = {}  # capture index -> (the model's layer index, pass)
        self.seq_len: int | None = None  # the input length: calls over other axes are not token attention
        self.other_calls = 0             # attention calls over other axes (depth, blocks), computed, not measured
        self._calls = 0

    def reset(self) -> None:
        self.layers.clear()
        self.hidden_ratio.clear()
        self.branches.clear()
        self.passes.clear()
        self.other_calls = 0
        self._calls = 0
        self._last_module = None

    def next_layer_index(self) -> int:
        self._calls += 1
        return self._calls - 1

    def observe(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                weights_for_rows: metrics.WeightsForRows, n_extra: int = 0,
                visible: torch.Tensor | None = None, branch: str | None = None,
                proxy=None, tokens_only: bool = False) -> None:
        """Reduce one layer. q, k: (batch, heads, T, d) with k expanded to the query heads.

        `weights_for_rows(i0, i1)` gives (batch, heads, i1-i0, n_extra + T) attention weights (or the
        paper's proxy scores); the first `n_extra` columns are added keys seen by every query.
        `visible`: how many queries see each real key under a sparse pattern (broadcastable to
        (batch, heads, T)); it gives the mask-aware alpha. None means plain causal (T - k + 1).
        `branch` files the layer under an extra attention branch (NSA) instead of the main one.
        `proxy`: where the metric reads proxy scores (attention without row normalisation), the
        row-local map from the weights the model applies (then given by `weights_for_rows`) to those
        scores. The applied weights are reported as well, so a report can tell a head that puts its
        weight on token 1 from a nearly silent head that the proxy renormalises onto it.
        """
        B, H, T, _ = q.shape
        n_keys = k.shape[-2]
        with torch.no_grad():
            rows = metrics.row_block_size(T, n_keys + n_extra, B * H, self.budget_elems)
            weight_raw = row_mass = None
            if proxy is None:
                col = metrics.column_sums_by_row_blocks(weights_for_rows, T, rows)  # (B, H, n_extra+keys)
            else:
                col, col_raw = metrics.column_sums_with_proxy(weights_for_rows, proxy, T, rows)
                weight_raw = col_raw[..., n_extra:] / metrics.causal_query_counts(n_keys, col.device)
                row_mass = col_raw.sum(-1) / T
            amap = None
            if self.keep_map_upto and T <= self.keep_map_upto:
                w = weights_for_rows(0, T)
                amap = (w if proxy is None else proxy(w))[0, :, :, n_extra:].float()
            tok = None
            if tokens_only and n_extra:
                renorm = lambda i0, i1: _over_tokens_only(weights_for_rows(i0, i1), n_extra)
                tok = (metrics.column_sums_by_row_blocks(renorm, T, rows)
                       / metrics.causal_query_counts(n_keys, col.device))
            self._store(layer, q, k, v, col[..., n_extra:], col[..., :n_extra] if n_extra else None,
                        visible=visible, branch=branch, attention_map=amap, weight_raw=weight_raw, row_mass=row_mass)
            if tok is not None and branch is None:
                self.layers[len(self.layers) - 1].alpha_tokens_only = tok

    def observe_columns(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                        col: torch.Tensor, extra_col: torch.Tensor | None = None,
                        visible: torch.Tensor | None = None, attention_map: torch.Tensor | None = None) -> None:
        """Record a layer whose column sums were computed by the fused path.

        q: (B, H, T, d); k, v: (B, Hkv, T, d) with H a multiple of Hkv (not repeated); col: (B, H, T)
        sums of the probabilities over the queries; extra_col: (B, H, n_extra) for added keys."""
        with torch.no_grad():
            self._store(layer, q, k, v, col, extra_col, visible=visible, attention_map=attention_map)

    def _store(self, layer, q, k, v, col, extra_col, *, visible=None, branch=None, attention_map=None,
               weight_raw=None, row_mass=None) -> None:
        """Reduce column sums and the diagnostics to a `LayerCapture`. Everything stays on the layer's
        device (no host sync per layer); the accumulator moves a whole batch to the CPU at once."""
        T, n_keys = q.shape[-2], k.shape[-2]
        alpha = col / metrics.causal_query_counts(n_keys, col.device)
        target = self.layers if branch is None else self.branches.setdefault(branch, {})
        if branch is None:  # captures in call order: a layer that runs twice (shared blocks) is two captures
            passes = sum(1 for lay, _ in self.passes.values() if lay == layer)
            self.passes[len(self.layers)] = (layer, passes)
            layer = len(self.layers)
        target[layer] = LayerCapture(
            alpha=alpha,
            alpha_extra=extra_col / T if extra_col is not None else None,
            key_ratio=metrics.first_token_norm_ratio(k),
            value_ratio=metrics.first_token_norm_ratio(v),
            qk=metrics.qk_split(q, k) if n_keys == T else {},  # compressed keys have no token pairing
            attention_map=attention_map,
            alpha_mask_aware=metrics.mask_aware_importance(col, visible) if visible is not None else None,
            weight_raw=weight_raw, row_mass=row_mass,
        )

    def observe_weights(self, layer: int, weights: torch.Tensor) -> None:
        """Record a layer from the attention weights the model itself returns (eager
        `output_attentions`), (B, H, T, T); q and k are not seen, so the key norms and the q.k split
        of such layers are NaN."""
        with torch.no_grad():
            col = weights.float().sum(-2)
            nan = torch.tensor(float("nan"))
            T = weights.shape[-1]
            self.passes[len(self.layers)] = (layer, sum(1 for lay, _ in self.passes.values() if lay == layer))
            self.layers[len(self.layers)] = LayerCapture(
                alpha=col / metrics.causal_query_counts(T, col.device), alpha_extra=None, key_ratio=nan,
                value_ratio=nan, qk={k: nan for k in ("normprod_first", "normprod_rest", "cos_first", "cos_rest")},
                attention_map=weights[0].float() if self.keep_map_upto and T <= self.keep_map_upto else None)

    def observe_hidden(self, layer: int, hidden: torch.Tensor) -> None:
        self.hidden_ratio[layer] = metrics.first_token_norm_ratio(hidden)


@contextlib.contextmanager
def recording(recorder: AttentionRecorder):
    """Route the registered HF attention function's observations to `recorder`."""
    token = _active_recorder.set(recorder)
    try:
        yield recorder
    finally:
        _active_recorder.reset(token)


def active_recorder() -> AttentionRecorder | None:
    return _active_recorder.get()


# ---------------------------------------------------------------------------------------------
# Hugging Face: a registered attention function
# ---------------------------------------------------------------------------------------------

def _over_tokens_only(w: torch.Tensor, n_extra: int) -> torch.Tensor:
    tokens = w[..., n_extra:].float()
    return tokens / tokens.sum(-1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)


def expand_kv(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Grouped-query attention: repeat each KV head for the query heads that share it."""
    n_kv = x.shape[1]
    return x if n_kv == n_heads else x.repeat_interleave(n_heads // n_kv, dim=1)


def hf_weights_for_rows(q, k, scaling, attention_mask, softcap=None, sink_logits=None, bias=None, causal=True):
    """Softmax attention of HF-style inputs for a block of query rows, as the model computes it.

    attention_mask: None (causal, or full when `causal` is False), a boolean mask (True = attend) or an
    additive float mask, shaped (batch, 1, Tq, Tk). bias: an additive position bias broadcastable to
    (batch, heads, Tq, Tk), added before the mask as eager attention does. sink_logits: logits that
    join the softmax denominator, per head (H,) as gpt-oss, or per query (B, H, Tq, 1); they come back
    as one extra leading column.
    """
    Tq, Tk = q.shape[-2], k.shape[-2]
    offset = Tk - Tq
    k_t = k.float().transpose(-1, -2)

    def weights(i0: int, i1: int) -> torch.Tensor:
        s = (q[:, :, i0:i1].float() @ k_t) * scaling
        if softcap:
            s = softcap * torch.tanh(s / softcap)
        if bias is not None:
            s = s + (bias[..., i0:i1, :Tk] if bias.shape[-2] == Tq else bias[..., :Tk]).float()
        if attention_mask is None:
            if causal:
                rows = torch.arange(i0, i1, device=q.device)[:, None] + offset
                s = s.masked_fill(torch.arange(Tk, device=q.device)[None, :] > rows, float("-inf"))
        elif attention_mask.dtype == torch.bool:
            s = s.masked_fill(~attention_mask[:, :, i0:i1, :Tk], float("-inf"))
        else:
            s = s + attention_mask[:, :, i0:i1, :Tk].float()
        if sink_logits is not None:
            sink = sink_logits.float()
            sink = sink.view(1, -1, 1, 1) if sink.dim() == 1 else sink[..., i0:i1, :]
            s = torch.cat([sink.expand(s.shape[0], s.shape[1], s.shape[2], 1), s], dim=-1)
        return torch.softmax(s, dim=-1)

    return weights


def mask_kind(attention_mask, T: int, window: int | None, is_causal=None) -> str:
    """What an HF attention mask is, for the dispatch: "causal", "window" (causal, i - j < window) or
    "other" (padding, prefix, additive biases, ...). Bool masks, and additive masks of 0 and the
    dtype's minimum (eager's), are compared with the pattern in row chunks, so this costs no (T, T)
    allocation beyond the mask itself."""
    if is_causal is False:
        return "other"
    windowed = window is not None and 0 < int(window) < T
    if attention_mask is None:
        return "causal" if not windowed else "other"  # a window the mask does not carry: not ours to assume
    if attention_mask.shape[-2:] != (T, T) \
            or not (attention_mask.dtype == torch.bool or attention_mask.is_floating_point()):
        return "other"
    i_all = torch.arange(T, device=attention_mask.device)
    for i0 in range(0, T, 1024):
        i = i_all[i0:i0 + 1024, None]
        expected = i_all[None, :] <= i
        if windowed:
            expected = expected & (i - i_all[None, :] < int(window))
        block = attention_mask[..., i0:i0 + 1024, :]
        if block.dtype != torch.bool:  # additive: 0 attends, the dtype's minimum (or -inf) masks
            masked = block <= torch.finfo(block.dtype).min / 2
            if not bool(((block == 0) | masked).all()):
                return "other"
            block = ~masked
        if not bool((block == expected).all()):
            return "other"
    return "window" if windowed else "causal"


# attention-function keywords that sinklab reads (scaling, masks, windows, caps, sink logits) or that
# carry nothing the weights depend on; any other keyword with a value is refused by name
READ_KWARGS = {"scaling", "dropout", "is_causal", "sliding_window", "softcap", "s_aux", "sinks", "indices",
               "position_bias"}
INERT_KWARGS = {"position_ids", "cache_position", "output_attentions", "use_cache", "past_key_values",
                "past_key_value", "deterministic", "layer_idx", "max_length_q", "max_length_k", "head_mask",
                "output_router_logits", "output_hidden_states", "logits_to_keep", "return_dict"}


def check_kwargs(module, kwargs: dict) -> None:
    """Refuse an attention call whose keywords would change the weights in a way sinklab ignores
    (top-k indices, position biases, per-query sinks, packed sequences)."""
    for name, value in kwargs.items():
        if value is None or name in READ_KWARGS or name in INERT_KWARGS:
            continue
        if name in ("cu_seq_lens_q", "cu_seq_lens_k"):
            raise SinklabError(f"{type(module).__name__} packs several sequences into one row ({name}); "
                               "sinklab measures unpacked batches only")
        raise SinklabError(f"{type(module).__name__} passes {name!r} to its attention function, which sinklab "
                           "does not apply to the weights it measures; this architecture is refused rather than "
                           "measured wrongly")


def _check_single_call(recorder, module) -> None:
    """One attention module calling its function twice in a row combines two maps (differential
    attention subtracts two softmaxes): no single alpha describes it. Shared blocks that run again
    later, with other layers in between, are measured per pass."""
    if getattr(recorder, "_last_module", None) is module:
        raise SinklabError(f"{type(module).__name__} calls its attention function twice per layer (as differential "
                           "attention does); its weights combine two maps, which sinklab does not measure")
    recorder._last_module = module


def _fused_layer(recorder, layer, query, key, value, attention_mask, scaling, kwargs):
    """The fused path for one HF layer, if it computes this layer exactly: the output, else None."""
    T = query.shape[-2]
    if fused.fused_plan(query.device.type, query.dtype, query.shape[-1], T) is None:
        return None  # no fused kernels here (the CPU): skip reading the mask
    window = kwargs.get("sliding_window")
    kind = mask_kind(attention_mask, T, window, kwargs.get("is_causal"))
    chosen = fused.fused_plan(query.device.type, query.dtype, query.shape[-1], T, softcap=kwargs.get("softcap"),
                              mask_kind=kind)
    if chosen is None or key.shape[-2] != T or query.shape[1] % key.shape[1]:
        return None
    sink_logits = kwargs.get("s_aux")
    out, col, sink_col = fused.attention_with_column_sums(
        query, key, value, scaling, chosen, window=int(window) if kind == "window" else None,
        sink_logits=sink_logits)
    amap = None
    if recorder.keep_map_upto and T <= recorder.keep_map_upto:
        n_heads = query.shape[1]
        rows = hf_weights_for_rows(query[:1], expand_kv(key[:1], n_heads), scaling,
                                   None if attention_mask is None else attention_mask[:1], None, sink_logits)
        amap = rows(0, T)[0, :, :, 0 if sink_logits is None else 1:].float()
    recorder.observe_columns(layer, query, key, value, col, None if sink_col is None else sink_col[..., None],
                             attention_map=amap,
                             visible=hf_visible_counts(attention_mask, T, T) if kind == "window" else None)
    return out


def _fold_indices(attention_mask, indices, query):
    """Top-k key selection (DeepSeek-style indexers pass `indices` (B, Tq, topk) to functions other
    than eager and SDPA) folded into the mask, as those models do for eager: the keys not selected
    are masked out."""
    if indices is None:
        return attention_mask
    B, _, Tq, _ = query.shape
    Tk = attention_mask.shape[-1] if attention_mask is not None else Tq
    selected = torch.zeros((B, Tq, Tk), dtype=torch.bool, device=query.device)
    selected = selected.scatter(-1, indices.long(), True).unsqueeze(1)
    if attention_mask is None:
        attention_mask = torch.ones((Tq, Tk), dtype=torch.bool, device=query.device).tril(Tk - Tq)[None, None]
    if attention_mask.dtype == torch.bool:
        return attention_mask & selected
    return attention_mask.masked_fill(~selected, torch.finfo(attention_mask.dtype).min)


def hf_visible_counts(attention_mask, Tq: int, Tk: int):
    """How many queries see each key under the mask, (B, 1, Tk), for the mask-aware alpha; None when
    that is plain causal (T - k + 1), where the mask-aware alpha is the paper's alpha."""
    if attention_mask is None or attention_mask.shape[-2] != Tq:
        return None
    allowed = attention_mask if attention_mask.dtype == torch.bool else \
        attention_mask > torch.finfo(attention_mask.dtype).min / 2
    counts = allowed[..., :Tk].sum(-2, dtype=torch.float32)
    causal = metrics.causal_query_counts(Tk, counts.device)
    return None if Tq != Tk or bool((counts == causal).all()) else counts


def _over_input_tokens(recorder, query, key) -> bool:
    """Token attention: queries and keys are the input positions. A call over another axis (the
    block-attention residuals of Inkling 2 attend over depth) is computed exactly but not measured."""
    T = recorder.seq_len
    return T is None or (query.shape[-2] == T and key.shape[-2] == T)


def sinklab_hf_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """`AttentionInterface` function: observe the layer, then return what the model's eager attention
    would. It applies everything it is given (masks, top-k indices, position biases, sink logits,
    softcaps) and, while recording, refuses any other keyword by name.

    It receives post-RoPE query and key (B, H, T, d) and (B, H_kv, T, d). On a GPU, layers that the
    fused kernels compute exactly (causal or sliding-window softmax, GQA, sink logits) return the
    fused output; the rest are measured by row blocks and computed by SDPA or from the same weights.
    """
    if scaling is None:
        scaling = 1.0 / math.sqrt(query.shape[-1])
    recorder = active_recorder()
    measured = _measured(recorder, module, query, key, kwargs)
    attention_mask = _fold_indices(attention_mask, kwargs.pop("indices", None), query)
    causal = kwargs.get("is_causal")
    causal = getattr(module, "is_causal", True) if causal is None else causal
    sinks = kwargs.get("s_aux") if kwargs.get("s_aux") is not None else kwargs.get("sinks")
    bias = kwargs.get("position_bias")
    layer = None
    if measured:
        layer = _layer_index(recorder, module)
        if bias is None and kwargs.get("sinks") is None and (attention_mask is not None or causal):
            with torch.no_grad():
                out = _fused_layer(recorder, layer, query, key, value, attention_mask, scaling, kwargs)
            if out is not None:
                return out, None
    n_heads = query.shape[1]
    k_full, v_full = expand_kv(key, n_heads), expand_kv(value, n_heads)
    weights = hf_weights_for_rows(query, k_full, scaling, attention_mask, kwargs.get("softcap"), sinks, bias, causal)
    n_extra = 0 if sinks is None else 1
    if measured:
        recorder.observe(layer, query, key, value, weights, n_extra=n_extra, tokens_only=sinks is not None,
                         visible=hf_visible_counts(attention_mask, query.shape[-2], key.shape[-2]))
    if kwargs.get("softcap") or sinks is not None or bias is not None:
        return _output_from_weights(weights, v_full, query, n_extra), None
    return _sdpa_output(module, query, key, value, attention_mask, dropout, scaling, kwargs)


def _measured(recorder, module, query, key, kwargs) -> bool:
    """Whether this call is measured: a recording is on and the call attends over the input tokens.
    A measured call is checked first (keywords it cannot apply, a second call in one layer); a call
    over another axis is only counted, so the recording can say that it saw some."""
    measured = recorder is not None and _over_input_tokens(recorder, query, key)
    if measured:
        check_kwargs(module, kwargs)
        _check_single_call(recorder, module)
    elif recorder is not None:
        recorder.other_calls += 1
    return measured


def _layer_index(recorder, module) -> int:
    """The module's own layer index; a module without one takes the recorder's next index in call order."""
    layer = getattr(module, "layer_idx", None)
    return recorder.next_layer_index() if layer is None else int(layer)


def _sdpa_output(module, query, key, value, attention_mask, dropout, scaling, kwargs):
    """What eager attention returns, computed by transformers' SDPA function (nothing it lacks was asked for)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    passed = {k: v for k, v in kwargs.items() if k in ("is_causal",)}
    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **passed)


def _output_from_weights(weights, v_full, query, n_extra):
    """SDPA has no softcap, bias or sink logit: the output from the same weights, block by block."""
    T = query.shape[-2]
    rows = metrics.row_block_size(T, v_full.shape[-2] + n_extra, query.shape[0] * query.shape[1])
    out = torch.cat([weights(i0, min(i0 + rows, T))[..., n_extra:] @ v_full.float()
                     for i0 in range(0, T, rows)], dim=-2).to(query.dtype)
    return out.transpose(1, 2).contiguous()


def sinklab_full_mask(*args, **kwargs):
    """The mask eager attention gets (additive float, 0 = attend), never None: models that use the
    mask themselves (MPT casts it to bool, BLOOM adds it to its ALiBi scores) compute as under eager,
    and a missing mask never silently means "causal" or "full" to the capture."""
    from transformers.masking_utils import eager_mask

    kwargs.pop("allow_is_causal_skip", None)
    kwargs["allow_is_bidirectional_skip"] = False
    return eager_mask(*args, **kwargs)


def sinklab_mask(*args, **kwargs):
    """None where the mask is plain causal (SDPA's own skip: no padding, no window that bites), so a long
    input needs no (T, T) mask and the fused kernels take the layer at once; otherwise eager's mask. A
    model that reads the mask itself turns bidirectional without it: the causality check at load
    catches that, and the loader retries it under ATTN_FULL_MASK."""
    from transformers.masking_utils import sdpa_mask

    dtype = kwargs.pop("dtype", torch.float32)
    allowed = sdpa_mask(*args, **{**kwargs, "allow_is_causal_skip": True, "allow_is_bidirectional_skip": False})
    if allowed is None:
        return None
    # the boolean mask built once, turned into eager's additive one (as eager_mask does) rather than built again
    return torch.where(allowed, torch.zeros((), device=allowed.device, dtype=dtype), torch.finfo(dtype).min)


_registered = False


def register_hf_attention() -> str:
    """Register the capture function and its mask builder under one name (idempotent)."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface

        AttentionInterface.register(ATTN_IMPLEMENTATION, sinklab_hf_attention)
        AttentionMaskInterface.register(ATTN_IMPLEMENTATION, sinklab_mask)
        AttentionInterface.register(ATTN_FULL_MASK, sinklab_hf_attention)
        AttentionMaskInterface.register(ATTN_FULL_MASK, sinklab_full_mask)
        _registered = True
    return ATTN_IMPLEMENTATION


def attention_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The innermost modules named *Attention (BloomAttention, FalconAttention, ...): where a model
    that does not call `AttentionInterface` returns its weights under `output_attentions=True`."""
    named = [m for m in model.modules() if type(m).__name__.endswith("Attention")]
    return [m for m in named if not any(c is not m and type(c).__name__.endswith("Attention") for c in m.modules())]


@contextlib.contextmanager
def attention_weight_hooks(modules: list[torch.nn.Module], recorder: AttentionRecorder):
    """The eager route, one layer at a time: each attention module's returned weights are reduced to
    column sums as the module returns, and replaced by None, so no (layers, T, T) stack builds up."""
    def make_hook(i):
        def hook(_module, _inputs, output):
            if not isinstance(output, (tuple, list)):  # GPT (openai-gpt) returns a list
                return None
            T = recorder.seq_len
            for j, x in enumerate(output):
                if torch.is_tensor(x) and x.dim() == 4 and x.shape[-1] == x.shape[-2] and T in (None, x.shape[-1]):
                    recorder.observe_weights(i, x.detach())
                    if hasattr(output, "_replace"):  # a named tuple (Reformer's outputs)
                        return output._replace(**{output._fields[j]: None})
                    return type(output)(list(output[:j]) + [None] + list(output[j + 1:]))
            return None
        return hook

    with _forward_hooks(modules, make_hook):
        yield


def find_decoder_layers(model: torch.nn.Module, n_layers: int) -> torch.nn.ModuleList | None:
    """The ModuleList of decoder blocks: the first one with `n_layers` entries."""
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n_layers:
            return module
    return None


@contextlib.contextmanager
def hidden_state_hooks(layers: torch.nn.ModuleList, recorder: AttentionRecorder):
    """Forward hooks that reduce each block's output (the residual stream) to its norm ratio."""
    def make_hook(i):
        def hook(_module, _inputs, output):
            hidden = output[0] if isinstance(output, (tuple, list)) else output
            recorder.observe_hidden(i, hidden.detach())
        return hook

    with _forward_hooks(layers, make_hook):
        yield


@contextlib.contextmanager
def _forward_hooks(modules, make_hook):
    """make_hook(i) on the i-th module for the duration of the block."""
    handles = [m.register_forward_hook(make_hook(i)) for i, m in enumerate(modules)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


__all__ = [
    "AttentionRecorder", "LayerCapture", "recording", "register_hf_attention", "find_decoder_layers",
    "hidden_state_hooks", "hf_weights_for_rows",
]
