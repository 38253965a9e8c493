"""A one-pass reader for LLaMA-architecture GGUF files (the default SmolLM2 model among them).

transformers' GGUF path parses the file once for the config and again for the weights, and builds
a tensor-name map per module, which makes the first load of SmolLM2 take ~18 s on 2 cores. For the
plain LLaMA layout the mapping is fixed, so one `GGUFReader` pass gives config and weights in a few
seconds. Every other architecture goes through transformers. Tests check every tensor against
transformers' own conversion.
"""
from __future__ import annotations

import numpy as np
import torch

_LAYER_NAMES = {
    "attn_norm.weight": "input_layernorm.weight", "ffn_norm.weight": "post_attention_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight", "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight", "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
_GLOBAL_NAMES = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
                 "output.weight": "lm_head.weight"}


def _unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's rotary permutation of the Q and K projections (as transformers does)."""
    dim = w.shape[0] // n_head // 2
    return w.reshape(n_head, dim, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape)


def _field(reader, key, default=None):
    """A metadata value of the file, or `default` when the key is absent."""
    f = reader.fields.get(key)
    return default if f is None else f.contents()


def _config(reader, names: set[str]):
    """The LlamaConfig the file's `llama.*` metadata describes."""
    from transformers import LlamaConfig

    def field(key, default=None):
        return _field(reader, key, default)

    n_head, n_kv = int(field("llama.attention.head_count")), int(field("llama.attention.head_count_kv"))
    vocab = field("llama.vocab_size") or len(reader.fields["tokenizer.ggml.tokens"].data)
    return LlamaConfig(
        vocab_size=int(vocab), hidden_size=int(field("llama.embedding_length")),
        intermediate_size=int(field("llama.feed_forward_length")), num_hidden_layers=int(field("llama.block_count")),
        num_attention_heads=n_head, num_key_value_heads=n_kv,
        max_position_embeddings=int(field("llama.context_length")),
        rms_norm_eps=float(field("llama.attention.layer_norm_rms_epsilon")),
        rope_theta=float(field("llama.rope.freq_base", 10000.0)),
        tie_word_embeddings="output.weight" not in names,
        bos_token_id=field("tokenizer.ggml.bos_token_id"), eos_token_id=field("tokenizer.ggml.eos_token_id"),
        pad_token_id=field("tokenizer.ggml.padding_token_id"),
    )


def _hf_tensor(name: str, w: np.ndarray, n_head: int, n_kv: int):
    """(transformers name, weight) for one GGUF tensor, or None for a tensor outside the plain LLaMA
    layout (then the whole file goes to transformers' full mapping)."""
    if name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[name], w
    if not name.startswith("blk."):
        return None
    _, i, rest = name.split(".", 2)
    if rest not in _LAYER_NAMES:
        return None
    # llama.cpp permutes Q and K for its rotary layout; transformers wants them back in HF order
    if rest == "attn_q.weight":
        w = _unpermute(w, n_head)
    elif rest == "attn_k.weight":
        w = _unpermute(w, n_kv)
    return f"model.layers.{i}.{_LAYER_NAMES[rest]}", w


def read(path: str, progress: bool = False):
    """(LlamaConfig, state_dict) for a LLaMA GGUF, or None for any other architecture. `progress`
    shows a bar over the tensors (dequantising SmolLM2 takes seconds to tens of seconds)."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(path)
    if _field(reader, "general.architecture") != "llama":
        return None
    names = {t.name for t in reader.tensors}
    if any(n.endswith(".bias") for n in names) or _field(reader, "llama.rope.scaling.type") is not None:
        return None  # biases or RoPE scaling: leave it to transformers' full mapping
    config = _config(reader, names)
    n_head, n_kv = config.num_attention_heads, config.num_key_value_heads
    from tqdm.auto import tqdm

    state = {}
    for t in tqdm(reader.tensors, desc="dequantising", unit="tensor", leave=False, disable=not progress):
        w = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        named = _hf_tensor(t.name, w, n_head, n_kv)
        if named is None:
            return None
        state[named[0]] = torch.tensor(named[1])
    if config.tie_word_embeddings:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    return config, state


def load_gguf_llama(path: str, progress: bool = False):
    """A float32 `LlamaForCausalLM`, or None when this reader does not apply."""
    from transformers import LlamaForCausalLM

    out = read(path, progress)
    if out is None:
        return None
    config, state = out
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    model.load_state_dict(state, strict=True, assign=True)
    if config.tie_word_embeddings:
        model.tie_weights()
    # RoPE frequencies are computed, not loaded: build that module on the CPU
    model.model.rotary_emb = type(model.model.rotary_emb)(config=config)
    return model.eval()
