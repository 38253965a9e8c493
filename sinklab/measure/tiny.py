"""Tiny random float32 models of any causal-LM type of the installed transformers.

The type's default config is rebuilt with small sizes passed to its constructor (so the fields it
derives from them, such as head dims, layer-type lists and rope sizes, are derived again), sub-configs
shrunk the same way. Hybrid stacks keep enough layers to hold one of each layer kind. Several
candidates are tried in turn; the first whose model builds and runs its own forward is kept.
"""
from __future__ import annotations

import contextlib
import copy
import io
import warnings

import torch

T = 32
# config fields shrunk by name, wherever they appear (sub-configs too); a field is only ever made smaller
DIMS = {
    "hidden_size": 64, "d_model": 64, "n_embd": 64, "n_embed": 64, "embed_dim": 64, "word_embed_proj_dim": 64,
    "dim": 64, "text_hidden_size": 64, "emb_dim": 64,
    "intermediate_size": 128, "ffn_dim": 128, "n_inner": 128, "decoder_ffn_dim": 128, "encoder_ffn_dim": 128,
    "d_ff": 128, "ffn_hidden_size": 128, "moe_intermediate_size": 32, "shared_expert_intermediate_size": 32,
    "expert_intermediate_size": 32, "dense_intermediate_size": 128, "ffn_intermediate_size": 128,
    "head_dim": 16, "attention_head_dim": 16, "kv_channels": 16, "d_kv": 16, "global_head_dim": 16,
    "kv_lora_rank": 16, "q_lora_rank": 32, "qk_rope_head_dim": 8, "qk_nope_head_dim": 8, "v_head_dim": 16,
    "index_head_dim": 16, "index_n_heads": 2, "index_topk": 8,
    "vocab_size": 512, "max_position_embeddings": 256, "max_seq_len": 256, "n_positions": 256,
    "n_ctx": 256, "max_sequence_length": 256, "seq_length": 256,
}
HEADS = {
    "num_attention_heads": 4, "n_head": 4, "n_heads": 4, "num_heads": 4, "decoder_attention_heads": 4,
    "encoder_attention_heads": 4,
    "num_key_value_heads": 2, "n_kv_heads": 2, "num_kv_heads": 2, "multi_query_group_num": 2,
    "num_key_value_groups": 2, "decoder_kv_heads": 2,
}
LAYERS = {
    "num_hidden_layers": 2, "n_layer": 2, "n_layers": 2, "num_layers": 2, "decoder_layers": 2,
    "encoder_layers": 2, "num_decoder_layers": 2,
}
EXPERTS = {
    "num_experts": 4, "n_routed_experts": 4, "num_local_experts": 4, "moe_num_experts": 4,
    "num_experts_per_tok": 2, "top_k": 2, "moe_topk": 2, "n_shared_experts": 1, "num_shared_experts": 1,
    "moe_k": 2, "n_group": 1, "topk_group": 1, "zero_expert_num": 2, "num_experts_per_token": 2, "num_expert_group": 1,
}
SIZES = {**DIMS, **HEADS, **LAYERS, **EXPERTS}
# per-layer patterns, cut to the number of layers kept
PATTERNS = ("layer_types", "mlp_layer_types", "mlp_only_layers", "block_types", "layers_block_type",
            "hybrid_override_pattern", "attention_layers")


@contextlib.contextmanager
def quiet():
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# fields equal in a default config stay equal when shrunk only within one family (a head dim that is
# the rope dim), never across families (an indexer dim that happens to equal a nope dim)
HEAD_DIMS = ("qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim", "head_dim", "swa_head_dim", "attention_head_dim",
             "kv_channels", "d_kv", "global_head_dim", "attention_head_size", "rotary_dim")
INDEX_DIMS = ("index_head_dim", "index_n_heads", "index_topk")


def _families():
    heads = {k: DIMS[k] for k in HEAD_DIMS}
    index = {k: DIMS[k] for k in INDEX_DIMS}
    other = {k: v for k, v in DIMS.items() if k not in heads and k not in index}
    return tuple({k: v} for k, v in other.items()) + (heads, index, HEADS, EXPERTS)
DERIVED = ("qk_head_dim", "per_layer_config")  # recomputed by the constructor from the shrunk fields
DIMS.update({"rotary_dim": 8, "attention_head_size": 16, "feed_forward_size": 128, "embedding_dim": 64,
             "mamba_d_head": 16, "mamba_n_heads": 8, "linear_key_head_dim": 16, "linear_value_head_dim": 16,
             "linear_num_key_heads": 2, "linear_num_value_heads": 4, "time_step_rank": 8, "state_size": 16,
             "global_hidden_size": 64, "sliding_window": 8, "linear_head_dim": 16, "linear_num_heads": 4,
             "layer_group_size": 2,
             "vocab_size_per_layer_input": 512, "expert_ffn_hidden_size": 32, "unpadded_vocab_size": 500,
             "swa_head_dim": 16, "rel_extent": 16, "num_kv_shared_layers": 0, "sliding_window_size": 8,
             "attention_chunk_size": 8, "encoder_hash_byte_group_vocab": 512, "local_attention_window_len": 16,
             "hidden_size_per_layer_input": 16})


def _pattern_layers(cfg) -> int:
    """How many leading layers hold one of each kind of the config's own per-layer pattern."""
    for name in PATTERNS:
        value = getattr(cfg, name, None) if name in vars(cfg) else None
        if isinstance(value, (list, tuple, str)) and len(value) > 2:
            kinds = {str(k) for k in value}
            seen = set()
            for i, kind in enumerate(value):
                seen.add(str(kind))
                if seen == kinds:
                    return max(2, min(i + 1, 12))
    return 2


def shrunk_fields(cfg, n_min: int, fill_none: bool) -> dict:
    """The fields of one config level that change: sizes made small (fields equal in the default stay
    equal, as a head dim that is the rope dim), patterns cut to the layers kept."""
    own = {k: v for k, v in vars(cfg).items() if not k.startswith("_")}
    n = max(n_min, _pattern_layers(cfg))
    out = {}
    _shrink_sizes(own, out)
    _cut_layers(own, out, n)
    if fill_none:  # some constructors leave these None and their modules need them
        _fill_none(own, out)
    _shrink_periods(own, out)
    _hybrid_with_attention(own, out, n)
    _special(own, out)
    return out


def _shrink_sizes(own: dict, out: dict) -> None:
    """Each size down to its small value; within a family, fields equal in the default stay equal."""
    for group in _families():
        by_value: dict = {}
        for name in group:
            value = own.get(name)
            if _is_int(value) and value > group[name]:
                out[name] = by_value.setdefault(value, group[name])


def _cut_layers(own: dict, out: dict, n: int) -> None:
    """Layer counts, per-layer patterns and per-layer size lists cut to the n layers kept."""
    for name in LAYERS:
        if _is_int(own.get(name)) and own[name] > n:
            out[name] = n
    for name, value in own.items():
        if name in PATTERNS and isinstance(value, (list, tuple, str)) and len(value) > n:
            out[name] = value[:n]
        elif name in SIZES and isinstance(value, list) and value and all(_is_int(v) for v in value):
            out[name] = [min(v, SIZES[name]) for v in value][:n]  # per-layer sizes


def _fill_none(own: dict, out: dict) -> None:
    """Head dim, KV heads and experts per token given where the default leaves them None."""
    heads = out.get("num_attention_heads", own.get("num_attention_heads"))
    hidden = out.get("hidden_size", own.get("hidden_size"))
    if "head_dim" in own and own["head_dim"] is None and heads and hidden:
        out["head_dim"] = hidden // heads
    if "num_key_value_heads" in own and own["num_key_value_heads"] is None and heads:
        out["num_key_value_heads"] = heads
    if "num_experts_per_tok" in own and own["num_experts_per_tok"] is None:
        out["num_experts_per_tok"] = EXPERTS["num_experts_per_tok"]


def _shrink_periods(own: dict, out: dict) -> None:
    """Periodic hybrids (Jamba): attention and experts fall within the layers kept."""
    for name, value in own.items():
        if _is_int(value) and name.endswith("_layer_period") and value > 2:
            out[name] = 2
        elif _is_int(value) and name.endswith("_layer_offset") and value > 1:
            out[name] = 1


def _hybrid_with_attention(own: dict, out: dict, n: int) -> None:
    """A hybrid stack whose default pattern holds no attention layer (all linear or mamba) gets one,
    the last, so the tiny model is the hybrid the type exists for."""
    for name in ("layer_types", "layers_block_type"):
        pattern = out.get(name, own.get(name))
        if isinstance(pattern, list) and pattern and set(pattern) <= {"linear_attention", "mamba", "mamba2"}:
            out[name] = list(pattern[:n - 1]) + ["full_attention" if name == "layer_types" else "attention"]
    if "attn_layer_indices" in own and not own["attn_layer_indices"]:
        out["attn_layer_indices"] = [n - 1]


def _special(own: dict, out: dict) -> None:
    """Fields tied to others by a constructor's own check."""
    if own.get("attention_type") == "block_sparse":  # BigBird: T = 32 holds no sparse blocks
        out["attention_type"] = "original_full"
    if "axial_pos_embds_dim" in own:  # reformer: the axial dims sum to the hidden size, the shape to the length
        hidden = out.get("hidden_size", own.get("hidden_size"))
        out["axial_pos_embds_dim"] = (hidden // 2, hidden - hidden // 2)
        out["axial_pos_shape"] = (8, 8)
        out["max_position_embeddings"] = 64
        for name in ("local_attn_chunk_length", "lsh_attn_chunk_length"):
            if name in own:
                out[name] = 16


def candidates(model_type: str):
    """Tiny configs of the type, the most likely to work first."""
    from transformers import AutoConfig

    with quiet():
        default = AutoConfig.for_model(model_type)
    for n_layers in (2, 4):
        for fill_none in (False, True):
            yield lambda n=n_layers, f=fill_none: _rebuilt(model_type, default, n, f)
            yield lambda n=n_layers, f=fill_none: _in_place(default, n, f)


def _rebuilt(model_type: str, default, n_layers: int, fill_none: bool):
    from transformers import AutoConfig

    kwargs = _rebuilt_kwargs(default, n_layers, fill_none, 0)
    return _fit(AutoConfig.for_model(model_type, **kwargs))


def _rebuilt_kwargs(cfg, n_layers: int, fill_none: bool, depth: int) -> dict:
    """Constructor keywords: the shrunk fields, and each sub-config as the dict of how it differs
    from its class's default, shrunk the same way."""
    from transformers import PretrainedConfig

    kwargs = shrunk_fields(cfg, n_layers, fill_none)
    for name, value in vars(cfg).items():
        if isinstance(value, PretrainedConfig) and depth < 3:
            sub = {k: v for k, v in value.to_diff_dict().items() if k not in DERIVED and k not in PATTERNS}
            sub.update(_rebuilt_kwargs(value, n_layers, fill_none, depth + 1))
            kwargs[name] = sub
    return kwargs


def _in_place(default, n_layers: int, fill_none: bool):
    """For a constructor that rejects the small sizes: shrink a copy of the default field by field."""

    cfg = copy.deepcopy(default)
    for c in list(all_configs(cfg)):
        for name, value in shrunk_fields(c, n_layers, fill_none).items():
            setattr(c, name, value)
    return _fit(cfg)


def _fit(cfg):
    """Room for T tokens, token ids inside the small vocabulary, and decoder mode for the encoder
    families that offer a causal-LM head."""
    for c in all_configs(cfg):
        own = vars(c)
        for name in ("max_position_embeddings", "n_positions", "max_seq_len"):
            if _is_int(own.get(name)) and own[name] < 2 * T:
                setattr(c, name, 2 * T)
        vocab = own.get("vocab_size")
        for name, value in list(own.items()):
            if _is_int(vocab) and vocab > 0 and name.endswith(("_token_id", "_token_index")):
                if _is_int(value) and value >= vocab:
                    setattr(c, name, value % vocab)
                elif isinstance(value, list) and all(_is_int(v) for v in value):
                    setattr(c, name, [v % vocab for v in value])
        if "is_decoder" in own and not own.get("is_encoder_decoder", False):
            c.is_decoder = True
    return cfg


def all_configs(cfg, depth: int = 0):
    from transformers import PretrainedConfig

    yield cfg
    if depth < 3:
        for value in list(vars(cfg).values()):
            if isinstance(value, PretrainedConfig):
                yield from all_configs(value, depth + 1)


def ids_for(model, batch: int = 2, seed: int = 1) -> torch.Tensor:
    vocab = int(getattr(model.config.get_text_config(), "vocab_size", 100) or 100)
    return torch.randint(3, max(4, min(vocab, 1000)), (batch, T), generator=torch.Generator().manual_seed(seed))


def build_tiny(model_type: str, folder: str | None = None, prepare=None, seed: int = 0):
    """(model, None) for the first tiny candidate that builds, runs its own forward and (given a
    folder) saves there after `prepare(model)`; else (None, the first candidate's error)."""
    from transformers import AutoModelForCausalLM

    first_error = None
    try:
        makers = list(candidates(model_type))
    except Exception as e:  # the type's default config itself does not build
        return None, first_line(e)
    for make in makers:
        try:
            with quiet():
                cfg = make()
                torch.manual_seed(seed)
                model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
            with quiet(), torch.no_grad():
                model(input_ids=ids_for(model), use_cache=False)
            if prepare is not None:
                prepare(model)
            if folder is not None:
                save(model, folder)
            return model, None
        except Exception as e:  # a candidate that fails is replaced by the next one
            first_error = first_error or first_line(e)
    return None, first_error + _default_builds(model_type)


def _default_builds(model_type: str) -> str:
    """Whether the type's own default config builds (on the meta device: no memory), to say if the
    failure is the tiny sizes' or the type's."""
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        with quiet(), torch.device("meta"):
            AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type))
    except Exception as e:  # the default fails too: the type cannot be built from its config alone
        return f" (its default config fails as well: {first_line(e)[:80]})"
    return " (its default config builds; no tiny config of it was found)"


def save(model, folder: str) -> None:
    with quiet():
        model.save_pretrained(folder)


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__
