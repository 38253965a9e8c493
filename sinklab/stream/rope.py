"""Where each layer's rotary frequencies live, and which models the sink cache must refuse.

The sink cache moves cached keys to new positions by rotating them, so it needs, per layer, the
rotary frequencies the model used (None for a layer without RoPE) and the layer's native sliding
window. A model whose positions cannot be moved that way is refused by name.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import torch

from ..errors import SinklabError

# RoPE variants whose frequencies do not depend on the sequence length
FIXED_ROPE = ("default", "linear", "llama3", "yarn")


@dataclass
class LayerSpec:
    inv_freq: torch.Tensor | None   # float64 rotary frequencies, None for a layer without RoPE
    sliding_window: int | None      # the layer's native window (keys visible to one query), None = full


def attention_by_layer(model) -> dict[int, torch.nn.Module]:
    """The attention module of each decoder layer, by layer index."""
    return {m.layer_idx: m for m in model.modules()
            if isinstance(getattr(m, "layer_idx", None), int) and type(m).__name__.endswith("Attention")}


def _learned_positions(model) -> str | None:
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Embedding) and any(s in name for s in ("wpe", "position", "pos_emb")):
            return name
    return None


def _rotaries(model) -> tuple[dict, dict]:
    """inv_freq per layer type ('' = every layer) and the RoPE type of each, from the rotary modules."""
    freqs, types = {}, {}
    for module in model.modules():
        rope_type = getattr(module, "rope_type", None)
        for attr, value in vars(module).get("_buffers", {}).items():
            if value is None or not attr.endswith("inv_freq") or attr.endswith("original_inv_freq"):
                continue
            layer_type = attr[: -len("_inv_freq")] if attr != "inv_freq" else ""
            freqs[layer_type] = value.detach().double()
            types[layer_type] = rope_type.get(layer_type) if isinstance(rope_type, dict) else (rope_type or "default")
    return freqs, types


def _check_rotate_half(attention, name: str) -> None:
    """The cache rotates keys as LLaMA's rotate_half does; a model that pairs dimensions otherwise is refused."""
    module = sys.modules.get(type(attention).__module__)
    rotate_half = getattr(module, "rotate_half", None)
    x = torch.arange(1.0, 9.0)
    if rotate_half is None or not torch.equal(rotate_half(x), torch.cat([-x[4:], x[:4]])):
        raise SinklabError(f"{name}: {type(attention).__name__} does not apply RoPE in LLaMA's rotate_half layout; "
                           "the sink cache cannot re-position its keys")


def layer_specs(model, name: str | None = None) -> list[LayerSpec]:
    """One LayerSpec per decoder layer; SinklabError for a model the sink cache cannot serve exactly."""
    cfg = model.config.get_text_config(decoder=True) if hasattr(model.config, "get_text_config") else model.config
    name = name or getattr(cfg, "_name_or_path", None) or cfg.model_type
    learned = _learned_positions(model)
    if learned:
        raise SinklabError(f"{name}: {cfg.model_type} uses learned absolute position embeddings ({learned}); "
                           "the sink cache cannot re-position its cached keys")
    freqs, types = _rotaries(model)
    if not freqs:
        raise SinklabError(f"{name}: {cfg.model_type} has no rotary position embedding (RoPE); the sink cache "
                           "re-positions RoPE keys only")
    for layer_type, rope_type in types.items():
        if rope_type not in FIXED_ROPE:
            raise SinklabError(f"{name}: RoPE scaling {rope_type!r} changes with length; the sink cache cannot "
                               f"re-position its keys (supported: {', '.join(FIXED_ROPE)})")
    attentions = attention_by_layer(model)
    n_layers = cfg.num_hidden_layers
    default_type = "sliding_attention" if getattr(cfg, "sliding_window", None) else "full_attention"
    layer_types = getattr(cfg, "layer_types", None) or [default_type] * n_layers
    specs = []
    for i in range(n_layers):
        attention = attentions.get(i)
        if attention is None:
            raise SinklabError(f"{name}: cannot find the attention module of layer {i}")
        uses_rope = bool(getattr(attention, "use_rope", True))
        inv_freq = freqs.get(layer_types[i], freqs.get("")) if uses_rope else None
        if uses_rope:
            _check_rotate_half(attention, name)
            if inv_freq is None:
                raise SinklabError(f"{name}: no rotary frequencies for layer {i} ({layer_types[i]})")
        window = cfg.sliding_window if layer_types[i] == "sliding_attention" else None
        specs.append(LayerSpec(inv_freq, window))
    return specs
