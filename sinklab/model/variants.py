"""The variant catalogue: one named config change per path through the model, shared by the tests,
the GPU checks and the training benchmark.

Sizes of the patterns (windows, prefixes, sparse blocks) scale with `block`, so each user picks the
scale of its sequences: the CPU tests use block 4 at T = 24, the GPU checks 32 and 128 at T = 256,
the training benchmark 128 at T = 2048. `tests/test_model.py` checks that the catalogue reaches
every value of every choice field, every switch and every optional size.
"""
from __future__ import annotations

# changes without a size: positions, norms, FFNs, heads, biases, score functions, gates
PLAIN: dict[str, dict] = {
    "default": {}, "nope": dict(position="nope"), "sinusoidal": dict(position="sinusoidal"),
    "learned": dict(position="learned"), "alibi": dict(position="alibi"), "relative": dict(position="relative"),
    "post_norm": dict(norm_position="post"), "layernorm": dict(norm="layernorm"),
    **{f"ffn_{f}": dict(ffn=f) for f in ("geglu", "reglu", "relu", "gelu", "swish")},
    "gqa": dict(n_kv_heads=2), "one_head": dict(n_heads=1), "sum_heads": dict(head_combine="sum"),
    "k_bias": dict(attn_bias="k"), "kv_bias": dict(attn_bias="kv"), "v_bias": dict(attn_bias="v"),
    "kv_bias_shared": dict(attn_bias="kv", attn_bias_shared=True), "k_bias_dim": dict(attn_bias="k", attn_bias_dim=4),
    "fixed_value_bias": dict(attn_bias="k", value_bias_scale=5.0), "sink_token": dict(sink_token=True),
    "scaled_softmax": dict(score="scaled_softmax", score_scale=0.2),
    "sigmoid": dict(score="sigmoid"), "sigmoid_norm": dict(score="sigmoid", normalize=True),
    "sigmoid_apple": dict(score="sigmoid", sigmoid_bias="auto"), "elu1": dict(score="elu1"),
    "elu1_norm": dict(score="elu1", normalize=True),
    "kernel_elu1": dict(score="kernel", kernel="elu1"),
    "kernel_identity": dict(score="kernel", kernel="identity", kernel_normalizer="max_abs_sum"),
    "kernel_mlp": dict(score="kernel", kernel="mlp", kernel_normalizer="none"),
    "sink_logit": dict(sink_logit=True), "off_by_one": dict(score="off_by_one"),
    "gate_elementwise": dict(gate="elementwise"), "gate_headwise": dict(gate="headwise"),
    "softpick": dict(score="softpick"),
}

# extra paths: linear biases, tied embeddings, a head wider than the fused kernels take (256), and the
# combinations that pick their own kernel path
COMBINED: dict[str, dict] = {
    "linear_bias": dict(linear_bias=True), "tied_embeddings": dict(tie_embeddings=True),
    "wide_head": dict(d_model=512, n_heads=1, d_ffn=512),
    "relative_sink_logit": dict(position="relative", sink_logit=True),
}


def sized(block: int = 4) -> dict[str, dict]:
    """The changes with a size, at a scale of `block` tokens (windows and prefixes span two blocks)."""
    w = 2 * block
    return {
        "prefix_lm": dict(prefix_len=w),
        "window": dict(window=w), "window_sink_token": dict(window=w, sink_token=True),
        "scaled_softmax_window": dict(score="scaled_softmax", score_scale=0.5, window=w),
        "softpick_alibi_window": dict(score="softpick", position="alibi", window=w),
    }


def sparse(block: int = 4, topk: int = 1) -> dict[str, dict]:
    """The sparse patterns with key blocks (and local bands) of `block` tokens, `topk` blocks chosen."""
    moba = dict(sparse="moba", sparse_block=block, sparse_topk=topk)
    nsa = dict(sparse="nsa", sparse_block=block, sparse_topk=topk, sparse_window=block)
    return {
        "local_global": dict(sparse="local_global", sparse_window=block, sparse_globals=2),
        "strided": dict(sparse="strided", sparse_stride=block),
        "moba": moba, "moba_sink_token": dict(moba, sink_token=True),
        "moba_forced": dict(moba, force_first_block=True), "moba_per_token": dict(moba, sparse_select="token"),
        "moba_gated_sink_logit": dict(moba, gate="elementwise", sink_logit=True),
        "moba_sink_token_logit": dict(moba, sink_token=True, sink_logit=True),
        "nsa": nsa, "nsa_per_token": dict(nsa, sparse_select="token"),
        "nsa_forced_softmax_gate": dict(nsa, force_first_block=True, branch_gate="softmax"),
        "dsa": dict(sparse="dsa", dsa_tokens=block + block // 2),
    }


def dense_catalogue(block: int = 4) -> dict[str, dict]:
    """Every entry without a sparse pattern."""
    return {**PLAIN, **COMBINED, **sized(block)}


def catalogue(block: int = 4, topk: int = 1) -> dict[str, dict]:
    """Every entry: config changes by name, to apply to a preset (`preset("tiny", **change)`)."""
    return {**dense_catalogue(block), **sparse(block, topk)}
